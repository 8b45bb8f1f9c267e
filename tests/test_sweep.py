"""Sweeps: validation before any run, run names, and a real sweep (finishes, skips, survives a failure)."""

import json
import os
import subprocess
import sys

import pytest

from configs import default
from tests.conftest import ROOT
from xcs import sweep

GET_CONFIG = '''
from configs import xmc

def get_config(arg=None):
    config = xmc.get_config(arg or "smoke")
    config.train.steps, config.train.log_every, config.train.checkpoint_every = 10, 5, 10
    config.train.progress = "none"
    config.eval.write_predictions = False
    return config

'''

MODULE = GET_CONFIG + '''
def sweep(add, arg=None):
    for seed in (0, 1):
        add(seed=seed)
        add(**{"model.encoder.width": 16, "seed": seed})
    add(arg="smoke,data=does_not_exist")  # valid config, fails at run time: no such data set
'''


def write_module(tmp_path, text, name="sweep_config"):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return str(path)


def launch_sweep(config, workdir, *flags):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config={config}", "--sweep",
           f"--workdir={workdir}", *flags]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_run_names_are_short_stable_and_safe():
    a = sweep.run_name({"seed": 1, "model.head.name": "sparse", "arg": "smoke"})
    assert a == sweep.run_name({"arg": "smoke", "model.head.name": "sparse", "seed": 1})
    assert a.startswith("smoke-sparse-seed1-") and len(a) == len("smoke-sparse-seed1-") + 8
    assert sweep.run_name({}) == "base"
    assert "/" not in sweep.run_name({"data.dir": "/a/b c"})
    k32 = {"aux.clusters": 1024, "model.head.intermediate": 4096, "model.head.name": "sparse",
           "sparsity.algorithm": "rigl", "sparsity.fan_in": 32}
    assert sweep.run_name(k32).startswith("clusters1024-intermediate4096-sparse-rigl-fan_in32-")
    assert sweep.run_name(k32) != sweep.run_name({**k32, "sparsity.fan_in": 64})
    assert sweep.run_name({"arg": "data=region,layer=tree,depth=6", "seed": 0}).startswith("region-tree-depth6-seed0-")
    long = sweep.run_name({f"k{i}": "x" * 20 for i in range(10)})
    assert len(long) <= sweep.MAX_SLUG + 9 and long != sweep.run_name({f"k{i}": "y" * 20 for i in range(10)})
    for name in (a, long, sweep.run_name(k32)):
        assert all(ch.isalnum() or ch in "._+-" for ch in name), name


def test_mistyped_key_fails_before_any_run(tmp_path):
    config = write_module(tmp_path, MODULE.replace('"model.encoder.width": 16', '"model.encodr.width": 16'))
    with pytest.raises(KeyError, match="model.encodr.width"):
        sweep.plan(config, str(tmp_path / "runs"))
    bad_type = write_module(tmp_path, MODULE.replace('"model.encoder.width": 16', '"model.encoder.width": "wide"'),
                           "bad_type")
    with pytest.raises(TypeError, match="model.encoder.width"):
        sweep.plan(bad_type, str(tmp_path / "runs"))
    run = launch_sweep(config, tmp_path / "runs")
    assert run.returncode != 0 and "model.encodr.width" in run.stderr
    assert not (tmp_path / "runs").exists()


def test_dry_run_lists_single_run_commands(tmp_path):
    runs = sweep.plan(write_module(tmp_path, MODULE), str(tmp_path / "runs"), {"train.batch_size": 32})
    names = [r.name[:-9] for r in runs]  # without the hash
    assert names == ["seed0", "width16-seed0", "seed1", "width16-seed1", "smoke-does_not_exist"]
    assert all(r.workdir == str(tmp_path / "runs" / r.name) for r in runs)
    cmd = runs[1].shell()
    assert "--config.model.encoder.width=16" in cmd and "--config.seed=0" in cmd
    assert "--config.train.batch_size=32" in cmd  # command-line overrides go to every run
    assert f":smoke,data=does_not_exist --workdir={tmp_path}" in runs[4].shell()


def test_a_run_whose_config_changed_since_is_named_with_its_keys(tmp_path):
    runs = sweep.plan(write_module(tmp_path, MODULE), str(tmp_path / "runs"), defaults=default.get_config().to_dict())
    run = runs[0]
    os.makedirs(run.workdir)
    assert run.changed_keys() == []  # nothing there yet
    before = json.loads(json.dumps(run.config))
    before["model"]["encoder"]["width"] = 99  # as if the config module was edited after this run
    before["train"]["a_key_of_an_older_version"] = 1  # keys on one side only are not a change
    del before["eval"]["top_k"]  # a key new since, at its default: no change
    with open(os.path.join(run.workdir, "config.json"), "w") as f:
        json.dump(before, f)
    assert run.changed_keys() == [f"model.encoder.width (99 -> {run.config['model']['encoder']['width']})"]
    top_k = run.config["eval"]["top_k"]
    run.config["eval"]["top_k"] = top_k + 1  # a key new since that run, set away from its default: a change
    assert run.changed_keys()[1:] == [f"eval.top_k (new key, default {top_k} -> {top_k + 1})"]
    defaults, run.defaults = run.defaults, None  # defaults unknown: a key new since is not judged
    assert len(run.changed_keys()) == 1
    run.defaults = defaults
    run.config["eval"]["top_k"] = top_k
    open(os.path.join(run.workdir, "results.json"), "w").write("{}")
    lines = []
    sweep.execute([run], echo=lines.append)
    assert run.status == "skipped"
    assert "model.encoder.width (99 ->" in lines[0] and "reused" in lines[0] and run.workdir in lines[0]
    before["model"]["encoder"]["width"] = run.config["model"]["encoder"]["width"]
    with open(os.path.join(run.workdir, "config.json"), "w") as f:
        json.dump(before, f)
    assert run.changed_keys() == []


def test_sweep_runs_skips_finished_and_survives_a_failure(tmp_path):
    config, workdir = write_module(tmp_path, MODULE), tmp_path / "runs"
    first = launch_sweep(config, workdir, "--jobs=2")
    assert first.returncode == 1, first.stdout + first.stderr[-3000:]
    assert "5 runs: 4 ran, 0 skipped (finished before), 1 failed" in first.stdout
    index = json.loads((workdir / "index.json").read_text())
    assert index[sweep.run_name({"seed": 0})] == {"seed": 0} and len(index) == 5
    assert sorted(index) == sorted(p.name for p in workdir.iterdir() if p.is_dir())
    failed = workdir / sweep.run_name({"arg": "smoke,data=does_not_exist"})
    assert str(failed / "launch.log") in first.stdout
    assert "does_not_exist" in (failed / "launch.log").read_text()
    results = sorted(workdir.glob("*/results.json"))
    assert len(results) == 4
    seeds = {json.loads((p.parent / "config.json").read_text())["seed"] for p in results}
    assert seeds == {0, 1}
    mtimes = [p.stat().st_mtime for p in results]
    record = json.loads((workdir / "sweep.json").read_text())
    assert record["config"] == config and [r["status"] for r in record["runs"]].count("ran") == 4

    second = launch_sweep(config, workdir, "--jobs=2")
    assert second.returncode == 1
    assert "5 runs: 0 ran, 4 skipped (finished before), 1 failed" in second.stdout
    assert [p.stat().st_mtime for p in results] == mtimes

    from xcs.report import report

    out = report(str(workdir), str(tmp_path / "report"), table=None)
    rows = [(row.label, [r.workdir for r in row.runs]) for row in out["table"].rows]
    named = lambda *overrides: [sweep.run_name(o) for o in overrides]  # noqa: E731
    assert rows == [("model.encoder.width=16", named({"model.encoder.width": 16, "seed": 0},
                                                     {"model.encoder.width": 16, "seed": 1})),
                    ("model.encoder.width=32", named({"seed": 0}, {"seed": 1}))]
    assert "±" in out["markdown"]
    pngs = [f for f in out["files"] if f.endswith(".png")]
    assert {os.path.basename(f) for f in pngs} == {"P@1_vs_model.encoder.width.png", "P_at_k.png",
                                                  "curves_loss.png"}
    assert all(os.path.getsize(f) > 1000 for f in pngs)


SMALL = GET_CONFIG + '''
def sweep(add, arg=None):
    add(seed=0)
    add(**{"model.encoder.width": 16, "seed": 0})

def table(arg=None):
    return dict(title="launchers", columns=["P@1", "P@3", "P@5", "PSP@5"])
'''


def test_submitit_launcher_gives_the_same_runs_skips_and_table_as_local(tmp_path):
    """--launcher=submitit_local (the SLURM path through submitit's local executor): same run folders,
    index, record and table as the local launcher; a second call skips every finished run."""
    pytest.importorskip("submitit")
    from xcs.report import report

    config = write_module(tmp_path, SMALL)
    tables = {}
    for launcher in ("local", "submitit_local"):
        workdir = tmp_path / launcher
        run = launch_sweep(config, workdir, "--jobs=2", f"--launcher={launcher}", "--launcher_params=timeout_min=10")
        assert run.returncode == 0, run.stdout + run.stderr[-3000:]
        assert "2 runs: 2 ran, 0 skipped (finished before), 0 failed" in run.stdout
        tables[launcher] = report(str(workdir), str(tmp_path / f"report_{launcher}"), plots=False)["markdown"]
        assert "$ " in (workdir / sweep.run_name({"seed": 0}) / "launch.log").read_text()
    local, cluster = tmp_path / "local", tmp_path / "submitit_local"
    assert (cluster / "index.json").read_text() == (local / "index.json").read_text()
    finished = lambda d: sorted(p.parent.name for p in d.glob("*/results.json"))  # noqa: E731
    assert finished(cluster) == finished(local) == sorted(json.loads((local / "index.json").read_text()))
    assert tables["submitit_local"] == tables["local"] and "| model.encoder.width=16 |" in tables["local"]
    assert list((cluster / "submitit").iterdir())  # submitit's own job files and logs
    again = launch_sweep(config, cluster, "--launcher=submitit_local")
    assert again.returncode == 0 and "2 runs: 0 ran, 2 skipped (finished before), 0 failed" in again.stdout


def test_launcher_params_parse():
    assert sweep.parse_launcher_params("slurm_partition=gpu,timeout_min=120,mem_gb=7.5,x=true") == {
        "slurm_partition": "gpu", "timeout_min": 120, "mem_gb": 7.5, "x": True}
    with pytest.raises(ValueError, match="key=value"):
        sweep.parse_launcher_params("gpu")
