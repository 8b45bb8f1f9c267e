"""End to end: every config's smoke variant, the workdir's files, resume after a kill, NaN stop."""

import glob
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import pytest

from tests.conftest import ROOT
from xcs.train import loop
from xcs.train.checkpoint import Checkpointer

CONFIG_FILES = sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
    if os.path.basename(p) not in ("__init__.py", "default.py"))


def load_config(path, arg):
    module = importlib.import_module(path[:-3].replace(os.sep, "."))
    return module.get_config(arg)


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_every_config_smoke_variant_runs(path, tmp_path):
    config = load_config(path, "smoke")
    config.train.progress = "none"
    results = loop.train_and_evaluate(config, str(tmp_path))
    for key in ("P@1", "P@3", "P@5", "nDCG@5", "PSP@5"):
        assert 0.0 <= results["test"][key] <= 100.0


def test_fast_variant_trains_sampled(tmp_path):
    config = load_config("configs/xmc.py", "fast,smoke")
    assert config.model.head.name == "lsh" and config.lsh.family == "uniform" and config.train.sparse_embedding
    config.train.progress = "none"
    config.lsh.batch_candidates = 100  # of 300 labels: a sampled block (the smoke's batch has 64 x 6 label slots)
    config.data.max_labels = 1
    results = loop.train_and_evaluate(config, str(tmp_path))
    assert results["test"]["P@1"] > 40.0  # it learns (smoke, dense head: ~70)


def test_real_data_default_trains_sampled_and_the_text_encoders_keep_the_dense_head():
    config = load_config("configs/xmc.py", "data=x")
    assert (config.model.head.name, config.lsh.family, config.lsh.predict) == ("lsh", "uniform", "exact")
    assert config.train.sparse_embedding and config.loss.name == "auto" and config.eval.knn.neighbors == 10
    assert config.data.max_features == 256  # a row's strongest entries: one long document does not widen every batch
    for encoder in ("minilm", "minilm+tfidf"):
        config = load_config("configs/xmc.py", f"data=x,encoder={encoder}")
        assert config.model.head.name == "dense" and not config.train.sparse_embedding


def launch(workdir, *overrides, wait=True):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/xmc.py:smoke",
           f"--workdir={workdir}", "--config.train.progress=none", *overrides]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_launch_writes_the_workdir(tmp_path):
    run = launch(tmp_path / "run")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "P@1" in run.stdout and "workdir:" in run.stdout
    wd = tmp_path / "run"
    config = json.loads((wd / "config.json").read_text())
    assert config["train"]["steps"] == 40
    lines = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [10, 20, 30, 40]
    assert {"loss", "grad_norm", "lr_encoder", "lr_head", "steps_per_s"} <= set(lines[0])
    results = json.loads((wd / "results.json").read_text())
    expected = {f"{m}@{k}" for m in ("P", "nDCG", "PSP") for k in range(1, 6)} | {"P@1", "P@3", "P@5"}
    assert expected <= set(results["test"])
    assert results["peak_rss_mb"] > 0 and results["machine"]["versions"]["jax"]
    assert glob.glob(str(wd / "tensorboard" / "events.out.tfevents.*"))
    assert Checkpointer(str(wd / "checkpoints"), 2).latest_step() == 40
    pred = (wd / "predictions.txt").read_text().splitlines()
    n, num_labels = map(int, pred[0].split())
    assert n == len(pred) - 1 == results["data"]["test_points"]
    for line in pred[1:]:
        pairs = [p.split(":") for p in line.split()]
        assert len(pairs) == 10 and all(0 <= int(i) < num_labels for i, _ in pairs)
        scores = [float(s) for _, s in pairs]
        assert scores == sorted(scores, reverse=True)


def test_mistyped_override_fails_before_any_work(tmp_path):
    run = launch(tmp_path / "run", "--config.trian.steps=3")
    assert run.returncode != 0
    assert "trian" in run.stderr
    assert not (tmp_path / "run").exists()


def _recorded_digests(ckpt: Path) -> dict:
    try:
        return json.loads((ckpt / "digests.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_killed_run_resumes_to_the_same_result(tmp_path):
    args = ("--config.train.steps=400", "--config.train.checkpoint_every=25", "--config.train.log_every=25")
    reference = launch(tmp_path / "ref", *args)
    assert reference.returncode == 0, reference.stderr[-3000:]
    proc = launch(tmp_path / "killed", *args, wait=False)
    ckpt = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        # A checkpoint counts once its digests are recorded (after its files are written); killing
        # the run while directory 50 is still being written would rightly resume from 25.
        if any(int(step) >= 50 for step in _recorded_digests(ckpt)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "results.json").exists()
    resumed = launch(tmp_path / "killed", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = json.loads((tmp_path / "ref" / "results.json").read_text())
    b = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert b["resumed_from_step"] >= 50
    assert a["test"] == b["test"]
    # The training time counts both processes: the recorded time up to the checkpoint resumed from,
    # plus the resumed process's own.
    recorded = json.loads((ckpt / "train_seconds.json").read_text())
    earlier = recorded[str(b["resumed_from_step"])]
    assert b["train_seconds_from_step"] == 0 and a["train_seconds_from_step"] == 0
    assert 0 < earlier < b["train_seconds"]
    assert recorded["400"] == b["train_seconds"]


def test_training_time_of_a_checkpoint_without_a_record_counts_from_the_resume(tmp_path):
    """A checkpoint written before training times were recorded: the resumed run reports only its own
    time and says from which step (train_seconds_from_step), so no total is ever guessed."""
    first = launch(tmp_path / "run", "--config.train.checkpoint_every=20", "--config.train.steps=60")
    assert first.returncode == 0, first.stderr[-3000:]
    # As if it had stopped after step 40, with a checkpoint of an older version (no time recorded).
    for name in ("checkpoints/train_seconds.json", "results.json"):
        (tmp_path / "run" / name).unlink()
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "60")
    more = launch(tmp_path / "run", "--config.train.checkpoint_every=20", "--config.train.steps=60")
    assert more.returncode == 0, more.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["resumed_from_step"] == 40 and results["train_seconds_from_step"] == 40
    assert not (tmp_path / "run" / "checkpoints" / "train_seconds.json").exists()


def test_nan_stops_with_the_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = loop.make_step

    def poisoned(*args, **kwargs):
        step_fn = real(*args, **kwargs)

        def wrapped(state, batch, key):
            # Step 14 (state.step == 13 before it) sees a NaN in its inputs.
            bad = state.step == 13
            batch = dict(batch, feat_val=jnp.where(bad, jnp.nan, batch["feat_val"]))
            return step_fn(state, batch, key)

        return wrapped

    monkeypatch.setattr(loop, "make_step", poisoned)
    config = load_config("configs/xmc.py", "smoke")
    config.train.checkpoint_every = 5
    config.train.progress = "none"
    with pytest.raises(loop.NonFiniteLossError, match=r"step 14 .*last good checkpoint: step 10"):
        loop.train_and_evaluate(config, str(tmp_path))
    assert Checkpointer(str(tmp_path / "checkpoints"), 2).latest_step() == 10
    assert not (tmp_path / "results.json").exists()
