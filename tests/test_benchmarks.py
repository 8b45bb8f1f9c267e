"""Benchmarks run in --quick mode and write the conventional JSON."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_heads_benchmark_quick(tmp_path):
    out = tmp_path / "heads.json"
    run = subprocess.run([sys.executable, "-m", "experiments.benchmarks.heads", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1
    for row in report["rows"]:
        assert {"head", "labels", "dim", "batch", "step_ms", "peak_rss_mb", "state_mb"} <= set(row)
        assert row["step_ms"] > 0 and row["state_mb"] > 0
    # dense head + Adam: 3 copies of (d*L + L) float32
    row = report["rows"][0]
    assert abs(row["state_mb"] - 3 * (row["dim"] * row["labels"] + row["labels"]) * 4 / 2**20) < 1e-3
