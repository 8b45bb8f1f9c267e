"""Benchmarks run in --quick mode and write the conventional JSON."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def run_quick(module: str, out) -> dict:
    """`python -m experiments.benchmarks.<module> --quick --out out`: its JSON report."""
    run = subprocess.run([sys.executable, "-m", f"experiments.benchmarks.{module}", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())


def test_heads_benchmark_quick(tmp_path):
    report = run_quick("heads", tmp_path / "heads.json")
    assert report["machine"]["cpu_count"] >= 1
    for row in report["rows"]:
        assert {"head", "labels", "dim", "batch", "step_ms", "peak_rss_mb", "state_mb"} <= set(row)
        assert row["step_ms"] > 0 and row["state_mb"] > 0
    # dense head + Adam: 3 copies of (d*L + L) float32
    row = report["rows"][0]
    assert abs(row["state_mb"] - 3 * (row["dim"] * row["labels"] + row["labels"]) * 4 / 2**20) < 1e-3


def test_heads_benchmark_fanin_block_size_suffix(monkeypatch):
    """`fanin8_mb0.25` is the fan-in-8 sparse head with config.sparsity.block_mb = 0.25."""
    from experiments.benchmarks import heads
    from xcs.sparsity import head as sparse_head

    seen = []
    real = sparse_head.kernel_chunk
    monkeypatch.setattr(sparse_head, "kernel_chunk", lambda *a: seen.append(a[-1]) or real(*a))
    row = heads.measure("fanin8_mb0.25", 300, 16, 8, repeats=1)
    assert row["head"] == "fanin8_mb0.25" and row["step_ms"] > 0
    assert seen and set(seen) == {0.25}
    # 300 labels x 8 fan-in x (weight + Adam m, v) + bias x 3, float32, + Adam's int32 step count
    assert row["state_mb"] * 2**20 == 3 * (300 * 8 + 300) * 4 + 4


def test_bias_grad_benchmark_quick(tmp_path):
    rows = run_quick("bias_grad", tmp_path / "bias.json")["rows"]
    assert [(r["batch"], r["width"]) for r in rows] == [(64, 1000), (64, 5000)]
    assert all(r["sum0_ms"] > 0 and r["matvec_ms"] > 0 for r in rows)


def test_head_matmul_benchmark_quick(tmp_path):
    rows = run_quick("head_matmul", tmp_path / "head_matmul.json")["rows"]
    assert [(r["batch"], r["width"], r["labels"]) for r in rows] == [(32, 16, 500)]
    assert all(r[f"{form}_ms"] > 0 for r in rows for form in ("f32", "bf16_autodiff", "bf16"))
