"""The report of hand-written results.json files: exact Markdown and LaTeX, seeds grouped, plots written."""

import json
import os

import pytest

from xcs.report import report
from xcs.report.__main__ import main

MACHINE = {"cpu": "Test CPU", "affinity_cpus": 2, "cpu_count": 8, "jax_backend": "cpu"}

TABLE_MODULE = '''
def _row(config):
    if "peer" in config:
        return config["peer"]["method"]
    return f"xcs d={config['model']['width']}"

def table(arg=None):
    return dict(title="Test " + str(arg), row_header="method", rows=_row,
                columns=["P@1", "PSP@5", "peak_rss_mb", "train_seconds", "seconds_per_epoch", ("model_mb", "MB")],
                plots=[dict(x="model.width", y="P@1")], at_k=["P"], curves=["loss"])
'''


def write_run(directory, config, p, psp5, rss, train_s, per_epoch=None, model_mb=None, losses=()):
    os.makedirs(directory)
    test = {f"P@{k}": p - 10 * (k - 1) for k in range(1, 6)}
    test["PSP@5"] = psp5
    results = {"test": test, "peak_rss_mb": rss, "train_seconds": train_s, "seconds_per_epoch": per_epoch,
               "machine": MACHINE}
    if model_mb is not None:
        results["model_mb"] = model_mb
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        for i, loss in enumerate(losses):
            f.write(json.dumps({"step": 10 * (i + 1), "loss": loss}) + "\n")


@pytest.fixture
def runs_dir(tmp_path):
    d = tmp_path / "runs"
    for seed, p, psp, rss, t in ((0, 50.0, 30.0, 1000.0, 10.0), (1, 52.0, 34.0, 1010.0, 14.0),
                                 (2, 54.0, 32.0, 1020.0, 12.0)):
        write_run(d / f"seed={seed}", {"seed": seed, "model": {"width": 64}, "train": {"progress": "none"}},
                  p, psp, rss, t, per_epoch=t / 5, losses=(3.0 - seed * 0.1, 2.0, 1.5))
    write_run(d / "wide", {"seed": 0, "model": {"width": 256}}, 60.0, 40.0, 2048.4, 30.0, per_epoch=6.0,
              losses=(2.5, 1.0))
    write_run(d / "peers" / "plt", {"seed": 0, "peer": {"method": "napkinxc_plt", "params": {}}},
              55.5, 41.25, 300.0, 2.34, model_mb=12.5)
    (d / "sweep.json").write_text(json.dumps({"config": str(tmp_path / "tables.py") + ":x", "runs": []}))
    (tmp_path / "tables.py").write_text(TABLE_MODULE)
    return d


EXPECTED_MD = """\
### Test x

| method | P@1 | PSP@5 | peak RSS (MB) | train (s) | s/epoch | MB | runs |
|---|---:|---:|---:|---:|---:|---:|---:|
| napkinxc_plt | 55.50 | 41.25 | 300 | 2.3 | — | 12.5 | 1 |
| xcs d=64 | 52.00 ± 2.00 | 32.00 ± 2.00 | 1010 ± 10 | 12.0 ± 2.0 | 2.40 ± 0.40 | — | 3 |
| xcs d=256 | 60.00 | 40.00 | 2048 | 30.0 | 6.00 | — | 1 |

Mean ± sample std over runs that differ only by seed. Machine: Test CPU, 2 cores, JAX cpu.
"""


def test_report_markdown_is_exact(runs_dir, tmp_path):
    out = report(str(runs_dir), str(tmp_path / "out"))  # the table module comes from sweep.json
    assert out["markdown"] == EXPECTED_MD
    assert (tmp_path / "out" / "table.md").read_text() == EXPECTED_MD
    tex = (tmp_path / "out" / "table.tex").read_text()
    assert "\\begin{tabular}{lrrrrrrr}" in tex
    assert ("xcs d=64 & $52.00 \\pm 2.00$ & $32.00 \\pm 2.00$ & $1010 \\pm 10$ & $12.0 \\pm 2.0$ & "
            "$2.40 \\pm 0.40$ & -- & 3 \\\\") in tex
    assert "napkinxc\\_plt & 55.50" in tex
    rows = json.loads((tmp_path / "out" / "table.json").read_text())["rows"]
    assert rows[1]["metrics"]["P@1"] == {"mean": 52.0, "std": 2.0, "n": 3}


def test_a_table_of_several_machines_says_which_row_ran_where(runs_dir, tmp_path):
    results = runs_dir / "seed=2" / "results.json"
    other = json.loads(results.read_text())
    other["machine"] = {"cpu": "Other CPU", "affinity_cpus": 2}
    results.write_text(json.dumps(other))  # one of d=64's three seeds ran elsewhere
    md = report(str(runs_dir), str(tmp_path / "out"))["markdown"]
    assert "| method | P@1 | PSP@5 | peak RSS (MB) | train (s) | s/epoch | MB | runs | machine |" in md
    assert "| napkinxc_plt | 55.50 | 41.25 | 300 | 2.3 | — | 12.5 | 1 | b |" in md
    assert "| xcs d=64 | 52.00 ± 2.00 | 32.00 ± 2.00 | 1010 ± 10 | 12.0 ± 2.0 | 2.40 ± 0.40 | — | 3 | a+b |" in md
    assert "Machine: a = Other CPU, 2 cores; b = Test CPU, 2 cores, JAX cpu (column machine)." in md
    rows = json.loads((tmp_path / "out" / "table.json").read_text())["rows"]
    assert rows[1]["machines"] == ["Other CPU, 2 cores", "Test CPU, 2 cores, JAX cpu"]
    assert "& 3 & a+b \\\\" in (tmp_path / "out" / "table.tex").read_text()


def test_plots_are_written_and_not_empty(runs_dir, tmp_path):
    out = report(str(runs_dir), str(tmp_path / "out"))
    pngs = sorted(os.path.basename(f) for f in out["files"] if f.endswith(".png"))
    assert pngs == ["P@1_vs_model.width.png", "P_at_k.png", "curves_loss.png"]
    for name in pngs:
        with open(tmp_path / "out" / name, "rb") as f:
            head = f.read(8)
        assert head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(tmp_path / "out" / name) > 5000


def test_default_plots_sweep_only_what_the_xcs_runs_vary(tmp_path):
    """A peer read the data with other settings (here max_len 128 against the xcs runs' 64): no plot of
    a metric against that key, which no xcs run varied; the key the xcs runs do vary is plotted."""
    d = tmp_path / "runs"
    for neighbors, p in ((0, 40.0), (10, 60.0)):
        write_run(d / f"knn={neighbors}", {"seed": 0, "data": {"max_len": 64}, "eval": {"neighbors": neighbors}},
                  p, 30.0, 1000.0, 10.0, losses=(2.0, 1.0))
    write_run(d / "peers" / "plt", {"seed": 0, "data": {"max_len": 128}, "eval": {"neighbors": 0},
                                    "peer": {"method": "napkinxc_plt", "params": {}}}, 55.0, 41.0, 300.0, 2.0)
    out = report(str(d), str(tmp_path / "out"))
    pngs = sorted(os.path.basename(f) for f in out["files"] if f.endswith(".png"))
    assert pngs == ["P@1_vs_eval.neighbors.png", "P_at_k.png", "curves_loss.png"]


def test_default_rows_are_the_keys_that_vary(runs_dir, tmp_path, capsys):
    (runs_dir / "sweep.json").unlink()
    assert main([str(runs_dir), "--out", str(tmp_path / "out"), "--no_plots"]) == 0
    printed = capsys.readouterr().out
    # No table module: rows are named by the differing config keys, default columns.
    assert "| run | P@1 | P@3 | P@5 | nDCG@5 | PSP@5 | train (s) | peak RSS (MB) | runs |" in printed
    assert ("| model.width=64, peer.method=—, peer.params=— | 52.00 ± 2.00 | 32.00 ± 2.00 | 12.00 ± 2.00 | — |"
            in printed)
    assert "| model.width=—, peer.method=napkinxc_plt, peer.params={} | 55.50 |" in printed
    assert not list((tmp_path / "out").glob("*.png"))


def test_unknown_table_key_is_refused(runs_dir, tmp_path):
    (tmp_path / "tables.py").write_text("def table(arg=None):\n    return dict(colums=['P@1'])\n")
    with pytest.raises(KeyError, match="colums"):
        report(str(runs_dir), str(tmp_path / "out"))


def test_a_run_that_only_evaluated_shows_no_training_time():
    from xcs.report.runs import metric

    trained = {"test": {"P@1": 50.0}, "train_seconds": 120.0, "seconds_per_epoch": 60.0, "steps": 10,
               "resumed_from_step": 0}
    evaluated = dict(trained, train_seconds=0.0, seconds_per_epoch=0.0, resumed_from_step=10)
    assert metric(trained, "train_seconds") == 120.0 and metric(trained, "seconds_per_epoch") == 60.0
    assert metric(evaluated, "train_seconds") is None and metric(evaluated, "seconds_per_epoch") is None
    assert metric(evaluated, "P@1") == 50.0


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = os.path.join(ROOT, "experiments", "results")
WITH_RUNS = sorted(d for d in os.listdir(COMMITTED) if os.path.isdir(os.path.join(COMMITTED, d, "runs")))


@pytest.mark.parametrize("name", WITH_RUNS)
def test_committed_tables_regenerate_from_their_run_summaries(name, tmp_path, monkeypatch):
    """Each committed table with its runs under experiments/results/NAME/runs comes out the same from them
    (the command its table.json records as `source`), and the runs are named as a sweep names them today."""
    from xcs.sweep import plan, run_name

    monkeypatch.chdir(ROOT)  # the table.json records its source as given, relative to the repository
    directory = os.path.join(COMMITTED, name)
    runs = os.path.join("experiments", "results", name, "runs")
    with open(os.path.join(directory, "table.json")) as f:
        source = json.load(f)["source"]
    assert main([runs, "--table", source, "--out", str(tmp_path), "--no_plots"]) == 0
    for file in ("table.md", "table.tex", "table.json"):
        with open(os.path.join(directory, file)) as f:
            assert (tmp_path / file).read_text() == f.read(), file
    with open(os.path.join(runs, "index.json")) as f:
        index = json.load(f)
    assert sorted(index) == sorted(d for d in os.listdir(runs) if os.path.isdir(os.path.join(runs, d)))
    assert all(run_name(overrides) == name for name, overrides in index.items())
    # today's sweep of that table plans these very folders: copied into its workdir, they are skipped
    assert set(index) <= {run.name for run in plan(source, str(tmp_path / "sweep"))}
