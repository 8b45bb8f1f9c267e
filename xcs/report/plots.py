"""PNG plots of a report: metric vs a swept config value, metric@k vs k, training curves.

Needs matplotlib (requirements-dev.txt; `pip install matplotlib`), imported only here.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from xcs.report.runs import IGNORED, RunResult, flatten, lookup, metric, varying_keys
from xcs.report.table import Table, aggregate


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("report plots need matplotlib (pip install matplotlib, or pass --no_plots)") from e
    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _file(out: str, name: str) -> str:
    return os.path.join(out, re.sub(r"[^A-Za-z0-9._=+@-]", "_", name) + ".png")


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _swept_runs(table: Table) -> list[RunResult]:
    """The xcs runs of the table. A peer's config holds only the data and evaluation settings it read, so
    its values of a key that the xcs runs set otherwise (e.g. an encoder's max_len) are not a sweep."""
    return [r for row in table.rows for r in row.runs if "peer" not in r.config]


def default_sweeps(table: Table, spec: dict[str, Any]) -> list[dict[str, str]]:
    """Every numeric config key that varies across the xcs runs, against the first column."""
    ignored = IGNORED + tuple(spec.get("ignore", ()))
    runs = _swept_runs(table)
    keys = varying_keys([r.config for r in runs], ignored)
    numeric = [k for k in keys if all(isinstance(lookup(r.config, k), (int, float))
                                      and not isinstance(lookup(r.config, k), bool) for r in runs)]
    return [{"x": k, "y": table.columns[0][0]} for k in numeric]


def metric_vs_value(table: Table, x: str, y: str, out: str) -> str | None:
    """y (mean ± std over seeds) against config value x; one line per setting of the other keys."""
    runs = [r for r in _swept_runs(table) if isinstance(lookup(r.config, x), (int, float))]
    if not runs:
        return None
    others = varying_keys([r.config for r in runs], IGNORED + (x,))
    series: dict[str, dict[float, list[float | None]]] = {}
    for r in runs:
        flat = flatten(r.config)
        name = ", ".join(f"{k}={flat.get(k)}" for k in others) or y
        series.setdefault(name, {}).setdefault(float(lookup(r.config, x)), []).append(metric(r.results, y))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    all_x = []
    for name, points in sorted(series.items()):
        xs = sorted(points)
        cells = [aggregate(points[v]) for v in xs]
        keep = [i for i, c in enumerate(cells) if c.mean is not None]
        ax.errorbar([xs[i] for i in keep], [cells[i].mean for i in keep],
                    yerr=[cells[i].std or 0.0 for i in keep], marker="o", capsize=3, label=name)
        all_x += xs
    if all_x and min(all_x) > 0 and max(all_x) / min(all_x) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)
    return _save(fig, _file(out, f"{y}_vs_{x}"))


def at_k(table: Table, family: str, out: str) -> str | None:
    """family@k (P, nDCG, PSP, R) against k = 1..K, one line per row."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    drawn, max_k = 0, 1
    for row in table.rows:
        ks, means, stds = [], [], []
        for k in range(1, 21):
            cell = aggregate([metric(r.results, f"{family}@{k}") for r in row.runs])
            if cell.mean is None:
                break
            ks.append(k)
            means.append(cell.mean)
            stds.append(cell.std or 0.0)
        if ks:
            ax.errorbar(ks, means, yerr=stds, marker="o", capsize=3, label=row.label)
            drawn, max_k = drawn + 1, max(max_k, ks[-1])
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("k")
    ax.set_ylabel(f"{family}@k (%)")
    ax.set_xticks(range(1, max_k + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, _file(out, f"{family}_at_k"))


def _read_curve(directory: str, run: RunResult, key: str) -> tuple[np.ndarray, np.ndarray]:
    path = os.path.join(directory, run.workdir, "metrics.jsonl")
    steps, values = [], []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if key in record:
                    steps.append(record["step"])
                    values.append(record[key])
    # A resumed run appends to metrics.jsonl; the last value logged at a step wins.
    by_step = dict(zip(steps, values))
    xs = np.array(sorted(by_step))
    return xs, np.array([by_step[s] for s in xs])


def curves(table: Table, directory: str, key: str, out: str) -> str | None:
    """metrics.jsonl `key` against the step: every run, one colour per row."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    drawn = 0
    for i, row in enumerate(table.rows):
        color = f"C{i % 10}"
        labelled = False
        for run in row.runs:
            xs, ys = _read_curve(directory, run, key)
            if len(xs):
                ax.plot(xs, ys, color=color, alpha=0.8, label=None if labelled else row.label)
                labelled = True
                drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, _file(out, f"curves_{key}"))


def write_plots(table: Table, spec: dict[str, Any], directory: str, out: str) -> list[str]:
    """Every plot the spec asks for (or the defaults); returns the files written."""
    plt = _pyplot()
    written = []
    try:
        for p in spec.get("plots") or default_sweeps(table, spec):
            written.append(metric_vs_value(table, p["x"], p["y"], out))
        for family in spec.get("at_k", ["P"]):
            written.append(at_k(table, family, out))
        for key in spec.get("curves", ["loss"]):
            written.append(curves(table, directory, key, out))
    finally:
        plt.close("all")
    return [w for w in written if w]
