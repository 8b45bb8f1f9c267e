"""Runs you can trust (issue 27): a workdir's config and lock, preemption, verified checkpoints, clean logs."""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax.numpy as jnp
import pytest

from configs import xmc
from tests.conftest import ROOT
from xcs import sweep
from xcs.cli import environment_error_line
from xcs.train import loop, preemption, workdir
from xcs.train.checkpoint import Checkpointer
from xcs.train.writers import truncate_metrics


def smoke(**train):
    config = xmc.get_config("smoke")
    config.train.progress = "none"
    config.train.checkpoint_every, config.train.log_every = 10, 5
    for key, value in train.items():
        config.train[key] = value
    return config


def metric_lines(wd):
    return [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]


def losses(wd):
    return [(m["step"], m["loss"]) for m in metric_lines(wd) if "loss" in m]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted smoke run (40 steps, checkpoints every 10, two kept): its workdir."""
    wd = str(tmp_path_factory.mktemp("reference") / "run")
    loop.train_and_evaluate(smoke(), wd)
    return wd


def results(wd):
    return json.load(open(os.path.join(wd, "results.json")))


# ------------------------------------------------------------------------------------------------
# The workdir's config


def test_another_config_is_refused_naming_the_keys_and_neutral_keys_may_differ(reference, tmp_path):
    config = smoke().to_dict()
    assert workdir.check(reference, config) == "finished"
    assert workdir.check(str(tmp_path / "new"), config) == "new"
    neutral = smoke(log_every=7, checkpoint_every=3, keep_checkpoints=5, eval_every=20, progress="lines")
    assert workdir.check(reference, neutral.to_dict()) == "finished"
    other = smoke(steps=80)
    other.seed = 3
    with pytest.raises(workdir.WorkdirError, match=r"holds a run of another config .*seed \(0 -> 3\), "
                                                   r"train.steps \(40 -> 80\).*--overwrite=move"):
        loop.train_and_evaluate(other, reference)
    # An earlier version's workdir (no fingerprint) and a key new since at its default: the same config.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    before = json.loads(json.dumps(config))
    del before["eval"]["top_k"]
    before["train"]["a_key_of_an_older_version"] = 1
    (legacy / "config.json").write_text(json.dumps(before))
    assert workdir.check(str(legacy), config) == "resume"
    (legacy / "config.json").write_text("{not json")
    with pytest.raises(workdir.WorkdirError, match="not readable JSON"):
        workdir.check(str(legacy), config)
    (legacy / "config.json").unlink()
    (legacy / "checkpoints").mkdir()
    with pytest.raises(workdir.WorkdirError, match="checkpoints but no config.json"):
        workdir.check(str(legacy), config)


def test_a_finished_run_is_reported_not_trained_and_overwrite_moves_it(reference, tmp_path):
    wd = str(tmp_path / "run")
    shutil.copytree(reference, wd)
    again = loop.train_and_evaluate(smoke(), wd)
    assert again["finished_before"] and again["test"] == results(reference)["test"]
    other = smoke()
    other.seed = 1
    fresh = loop.train_and_evaluate(other, wd, overwrite="move")
    assert fresh["test"] != results(reference)["test"] and "finished_before" not in fresh
    assert results(wd + ".old-1")["test"] == results(reference)["test"]  # the earlier run, kept
    assert json.load(open(os.path.join(wd, "config.json")))["seed"] == 1
    loop.train_and_evaluate(smoke(), wd, overwrite="delete")
    assert results(wd)["test"] == results(reference)["test"] and not os.path.exists(wd + ".old-2")


def test_cli_refusal_is_one_line_exit_2_and_writes_nothing(reference, tmp_path):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    before = {p: p.stat().st_mtime_ns for p in wd.rglob("*")}
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/xmc.py:smoke", f"--workdir={wd}",
           "--config.train.progress=none", "--config.train.log_every=5", "--config.train.checkpoint_every=10"]
    env = dict(os.environ, XCS_HUGE_PAGES="0")
    run = subprocess.run(cmd + ["--config.seed=2"], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr[-2000:]
    assert run.stderr.startswith("xcs-train: error: workdir ") and "seed (0 -> 2)" in run.stderr
    assert {p: p.stat().st_mtime_ns for p in wd.rglob("*")} == before
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 0 and "finished before" in run.stdout, run.stderr[-2000:]
    assert f"{results(reference)['test']['P@1']:.2f}" in run.stdout
    assert {p: p.stat().st_mtime_ns for p in wd.rglob("*")} == before


# ------------------------------------------------------------------------------------------------
# One process per workdir


def test_lock_refuses_a_second_process_naming_it_and_takes_over_a_dead_ones(tmp_path):
    wd = str(tmp_path / "run")
    lock = workdir.WorkdirLock(wd).acquire()
    holder = json.load(open(os.path.join(wd, "lock")))
    assert holder["pid"] == os.getpid()
    with pytest.raises(workdir.WorkdirError, match=rf"in use by process {os.getpid()} on host {holder['host']}"):
        workdir.WorkdirLock(wd).check_free()
    with pytest.raises(workdir.WorkdirError, match="in use by process"):
        workdir.WorkdirLock(wd).acquire()
    with pytest.raises(workdir.WorkdirError, match="in use by process"):
        loop.train_and_evaluate(smoke(), wd)
    lock.release()
    assert not os.path.exists(os.path.join(wd, "lock"))
    # A lock file left by a process that died (SIGKILL): nobody holds it, so it is taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open(os.path.join(wd, "lock"), "w") as f:
        json.dump({"pid": int(dead.stdout), "host": holder["host"], "started": "earlier"}, f)
    workdir.WorkdirLock(wd).check_free()
    with workdir.WorkdirLock(wd):
        assert json.load(open(os.path.join(wd, "lock")))["pid"] == os.getpid()
    assert not os.path.exists(os.path.join(wd, "lock"))


# ------------------------------------------------------------------------------------------------
# Preemption, non-finite steps, damaged checkpoints, logs


def poison(monkeypatch, at_step, action):
    real = loop.make_step

    def patched(*args, **kwargs):
        step_fn = real(*args, **kwargs)

        def wrapped(state, batch, key):
            return step_fn(state, action(state, batch) if int(state.step) == at_step - 1 else batch, key)

        return wrapped

    monkeypatch.setattr(loop, "make_step", patched)


def test_sigterm_saves_the_current_step_and_the_rerun_ends_as_an_uninterrupted_run(reference, tmp_path, monkeypatch):
    wd = str(tmp_path / "run")

    def term(state, batch):
        os.kill(os.getpid(), signal.SIGTERM)
        return batch

    poison(monkeypatch, 17, term)
    with pytest.raises(loop.Interrupted, match="SIGTERM at step 17") as stop:
        loop.train_and_evaluate(smoke(), wd)
    assert stop.value.exit_status == 143
    status = json.load(open(os.path.join(wd, "status.json")))
    assert status["status"] == "interrupted" and status["step"] == 17 and status["signal"] == "SIGTERM"
    assert Checkpointer(os.path.join(wd, "checkpoints"), 2).latest_step() == 17
    assert not os.path.exists(os.path.join(wd, "lock")) and not os.path.exists(os.path.join(wd, "results.json"))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is the process's again
    monkeypatch.undo()
    resumed = loop.train_and_evaluate(smoke(), wd)
    assert resumed["resumed_from_step"] == 17 and resumed["test"] == results(reference)["test"]
    assert losses(wd) == losses(reference)  # every step once, with the same loss
    assert json.load(open(os.path.join(wd, "status.json")))["status"] == "finished"


def test_a_signal_before_training_stops_the_run_with_nothing_written(tmp_path):
    # A test run started in the background (nohup, `cmd &` in a script) inherits SIGINT ignored, which install()
    # rightly keeps ignored: give this process the interactive default first.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    preemption.install()  # as the command line does first
    try:
        os.kill(os.getpid(), signal.SIGINT)  # noted, not raised
        with pytest.raises(loop.Interrupted, match="SIGINT before training started") as stop:
            loop.train_and_evaluate(smoke(), str(tmp_path / "run"))
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert stop.value.exit_status == 130 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("at_step", [14, 20])  # between checkpoints; on a checkpoint step
def test_a_non_finite_step_is_never_checkpointed(tmp_path, monkeypatch, at_step):
    poison(monkeypatch, at_step, lambda state, batch: dict(batch, feat_val=jnp.full_like(batch["feat_val"], jnp.nan)))
    with pytest.raises(loop.NonFiniteLossError, match=rf"step {at_step} .*last good checkpoint: step 10"):
        loop.train_and_evaluate(smoke(), str(tmp_path))
    assert Checkpointer(str(tmp_path / "checkpoints"), 2).latest_step() == 10
    assert json.load(open(tmp_path / "status.json"))["status"] == "failed"


def damage_bytes(step_dir):
    big = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(big, "r+b") as f:
        f.seek(big.stat().st_size // 2)
        f.write(os.urandom(4096))


def drop_digest(step_dir):
    path = step_dir.parent / "digests.json"
    record = json.loads(path.read_text())
    del record[step_dir.name]
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("damage", [damage_bytes, lambda d: (d / "default" / "_METADATA").unlink(), drop_digest,
                                    lambda d: shutil.rmtree(d / "default")],
                         ids=["random_bytes", "no_METADATA", "no_digest", "partial"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_older_one_resumes(reference, tmp_path, damage, caplog):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    (wd / "results.json").unlink()  # as if stopped after saving step 40
    damage(wd / "checkpoints" / "40")
    (wd / "checkpoints" / "train_seconds.json").write_text("{broken")  # reported, not blocking
    resumed = loop.train_and_evaluate(smoke(), str(wd))
    assert resumed["resumed_from_step"] == 30 and resumed["test"] == results(reference)["test"]
    assert resumed["train_seconds_from_step"] == 30  # the time before step 30 is unknown: not guessed
    assert (wd / "damaged_checkpoints" / "40").is_dir()
    assert any("checkpoints/40 is damaged or partial" in r.getMessage() for r in caplog.records)
    assert losses(str(wd)) == losses(reference)


def test_metrics_after_the_restored_step_and_a_partial_line_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (5, 10, 15)) + '{"step": 20, "lo')
    assert truncate_metrics(str(path), 10) == 2
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [5, 10]


# ------------------------------------------------------------------------------------------------
# One-line errors, the sweep


def test_disk_full_and_permission_errors_are_one_line_naming_the_path():
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/metrics.jsonl")
    assert environment_error_line(full).startswith("/runs/x/metrics.jsonl: no space left on the device")
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = PermissionError(errno.EACCES, "Permission denied", "/runs/x/checkpoints")
    assert environment_error_line(wrapped) == "/runs/x/checkpoints: permission denied (Permission denied)"
    assert "no space left" in environment_error_line(ValueError("tensorstore: No space left on device [x]"))
    assert environment_error_line(ValueError("a bug")) is None


CHILD = """
import signal, sys, time
def stop(signum, frame):
    open(sys.argv[1], "w").write(str(signum))
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1] + ".started", "w").close()
time.sleep(60)
"""


def test_a_sweep_passes_sigterm_to_its_runs_and_leaves_none_behind(tmp_path):
    runs = []
    for name in ("a", "b"):
        wd = tmp_path / name
        runs.append(sweep.Run(name, str(wd), [sys.executable, "-c", CHILD, str(tmp_path / f"{name}.signal")]))
    started = [tmp_path / "a.signal.started", tmp_path / "b.signal.started"]

    def stop_when_started():
        deadline = time.time() + 60
        while not all(p.exists() for p in started) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_started, daemon=True).start()
    lines = []
    with pytest.raises(sweep.SweepInterrupted):
        sweep.execute(runs, jobs=2, echo=lines.append)
    assert [r.status for r in runs] == ["interrupted", "interrupted"]
    assert [(tmp_path / f"{n}.signal").read_text() for n in "ab"] == [str(int(signal.SIGTERM))] * 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# ------------------------------------------------------------------------------------------------
# Fault injection: a run killed at random moments resumes to the uninterrupted run's results


def test_runs_killed_at_random_moments_resume_to_the_same_results(tmp_path):
    train = dict(steps=1000, checkpoint_every=50, log_every=50)
    ref = str(tmp_path / "ref")
    loop.train_and_evaluate(smoke(**train), ref)
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/xmc.py:smoke",
           *(f"--config.train.{k}={v}" for k, v in train.items()), "--config.train.progress=none"]
    env = dict(os.environ, XCS_HUGE_PAGES="0")
    rng = random.Random(0)
    for trial, sig in enumerate([signal.SIGKILL, signal.SIGTERM, signal.SIGKILL]):
        wd = tmp_path / f"trial{trial}"
        proc = subprocess.Popen(cmd + [f"--workdir={wd}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120  # from the first checkpoint on (the rest takes about 4 s here)
        while not (wd / "checkpoints" / "50").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 3.0))  # anywhere in training, saving, evaluating or writing results
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if sig == signal.SIGTERM:  # saved and stopped; or it had finished (or was past writing its results)
            assert "Traceback" not in err
            assert proc.returncode in (0, 143) or (wd / "results.json").exists(), err[-3000:]
            if proc.returncode == 143:
                assert err.strip().splitlines()[-1].startswith("xcs-train: interrupted by SIGTERM")
        rerun = loop.train_and_evaluate(smoke(**train), str(wd))  # the same config as the command's
        assert rerun["test"] == results(ref)["test"], f"trial {trial} ({sig.name})"
        assert results(str(wd))["test"] == results(ref)["test"]
        assert losses(str(wd)) == losses(ref)
        assert not (wd / "lock").exists()
