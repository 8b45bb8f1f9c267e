"""The table spec of a table config module, aggregation over seeds, and Markdown / LaTeX output.

A table module (configs/tables/NAME.py) defines `table(arg=None) -> dict` (or a `TABLE` dict):

    title       heading of the table
    row_header  header of the first column (default "run")
    rows        how runs are labelled: a function of the nested config dict, a list of dotted
                config paths, or None (the config keys that differ between runs)
    columns     metric keys: test metrics (`P@1`, `nDCG@5`, `PSP@5`, ...) or dotted paths into
                results.json (`peak_rss_mb`, `train_seconds`, `seconds_per_epoch`, ...); an entry
                may be a (key, header) pair
    ignore      further config keys that do not make runs different (besides the seed)
    plots       [{"x": config path, "y": metric}]: metric vs a swept value (default: every numeric
                config key that varies, against the first column)
    at_k        metric families plotted against k (e.g. ["P", "PSP"])
    curves      metrics.jsonl keys plotted against the step (default ["loss"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
from typing import Any

from xcs.report.runs import IGNORED, RunResult, group, metric
from xcs.sweep import load_module, split_config_string

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_COLUMNS = ["P@1", "P@3", "P@5", "nDCG@5", "PSP@5", "train_seconds", "peak_rss_mb"]
SPEC_KEYS = {"title", "row_header", "rows", "columns", "ignore", "plots", "at_k", "curves"}

# Header and decimals of the columns the report knows; other keys show as themselves with 4 digits.
KNOWN = {
    "peak_rss_mb": ("peak RSS (MB)", 0),
    "train_seconds": ("train (s)", 1),
    "seconds_per_epoch": ("s/epoch", 2),
    "eval_seconds": ("eval (s)", 1),
    "total_seconds": ("total (s)", 1),
    "model_mb": ("model (MB)", 1),
    "num_params": ("params", 0),
    "epochs": ("epochs", 1),
}


def column_format(key: str) -> tuple[str, int | None]:
    """(header, decimals); None decimals = 4 significant digits."""
    if key in KNOWN:
        return KNOWN[key]
    if "@" in key:  # P@k, nDCG@k, PSP@k, R@k are percentages
        return key, 2
    return key, None


@dataclasses.dataclass
class Cell:
    mean: float | None
    std: float | None  # sample standard deviation (n - 1) over the runs that have the value; None if < 2
    n: int

    def text(self, decimals: int | None, latex: bool = False) -> str:
        if self.mean is None:
            return "—" if not latex else "--"
        num = (lambda v: f"{v:.{decimals}f}") if decimals is not None else (lambda v: f"{v:.4g}")
        if self.std is None:
            return num(self.mean)
        return f"${num(self.mean)} \\pm {num(self.std)}$" if latex else f"{num(self.mean)} ± {num(self.std)}"


@dataclasses.dataclass
class Row:
    label: str
    runs: list[RunResult]
    cells: dict[str, Cell]


@dataclasses.dataclass
class Table:
    title: str
    row_header: str
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[Row]
    machines: list[str]


def load_spec(directory: str, table: str | None) -> tuple[dict[str, Any], str | None]:
    """The table spec from `table` (`path.py[:arg]`), else the module recorded by the sweep in
    sweep.json / peers.json of `directory`, else the defaults. Returns (spec, where it came from)."""
    source = table
    if source is None:
        for record in ("sweep.json", "peers.json"):
            path = os.path.join(directory, record)
            if os.path.exists(path):
                with open(path) as f:
                    source = json.load(f)["config"]
                break
    spec: dict[str, Any] = {}
    if source is not None:
        path, arg = split_config_string(source)
        if not os.path.isfile(path) and os.path.isfile(os.path.join(ROOT, path)):
            path = os.path.join(ROOT, path)  # recorded relative to the repository root by a sweep run there
        module = load_module(path)
        if callable(getattr(module, "table", None)):
            spec = dict(module.table(arg))
        elif isinstance(getattr(module, "TABLE", None), dict):
            spec = dict(module.TABLE)
        elif table is not None:
            raise AttributeError(f"{path} defines neither `table(arg=None)` nor `TABLE`")
        else:
            source = None  # a sweep of a config module without a table: the defaults
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise KeyError(f"table spec of {source}: unknown key(s) {sorted(unknown)}; known: {sorted(SPEC_KEYS)}")
    return spec, source


def aggregate(values: list[float | None]) -> Cell:
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return Cell(None, None, 0)
    std = statistics.stdev(present) if len(present) > 1 else None
    return Cell(statistics.fmean(present), std, len(present))


def _machine(results: dict[str, Any]) -> str:
    m = results.get("machine") or {}
    cores = m.get("affinity_cpus") or m.get("cpu_count")
    text = f"{m.get('cpu', 'unknown CPU')}, {cores} cores" if cores else m.get("cpu", "unknown machine")
    return text + (f", JAX {m['jax_backend']}" if m.get("jax_backend") else "")


def build(runs: list[RunResult], spec: dict[str, Any]) -> Table:
    columns = []
    for c in spec.get("columns") or DEFAULT_COLUMNS:
        key, header = (c if isinstance(c, (tuple, list)) else (c, column_format(c)[0]))
        columns.append((key, header))
    ignored = IGNORED + tuple(spec.get("ignore", ()))
    rows = [Row(label, members, {key: aggregate([metric(r.results, key) for r in members]) for key, _ in columns})
            for label, members in group(runs, spec.get("rows"), ignored)]
    machines = sorted({_machine(r.results) for r in runs})
    return Table(spec.get("title", "Results"), spec.get("row_header", "run"), columns, rows, machines)


def _letters(table: Table) -> dict[str, str]:
    return {m: chr(ord("a") + i) for i, m in enumerate(table.machines)}


def machine_tags(table: Table) -> list[str] | None:
    """Per row, the machines its runs ran on as letters of table.machines ("a", "a+b"); None when the table has
    one machine. Times from different machines are not comparable, so a table that mixes them says which is which."""
    if len(table.machines) < 2:
        return None
    letter = _letters(table)
    return ["+".join(sorted({letter[_machine(r.results)] for r in row.runs})) for row in table.rows]


def _machines_note(table: Table) -> str:
    if len(table.machines) < 2:
        return "; ".join(table.machines)
    return "; ".join(f"{letter} = {m}" for m, letter in _letters(table).items()) + " (column machine)"


def markdown(table: Table) -> str:
    tags = machine_tags(table)
    header = [table.row_header] + [h for _, h in table.columns] + ["runs"] + (["machine"] if tags else [])
    lines = [f"### {table.title}", "", "| " + " | ".join(header) + " |",
             "|---|" + "|".join("---:" for _ in header[1:]) + "|"]
    for i, row in enumerate(table.rows):
        cells = [row.cells[k].text(column_format(k)[1]) for k, _ in table.columns]
        lines.append("| " + " | ".join([row.label, *cells, str(len(row.runs))] + ([tags[i]] if tags else [])) + " |")
    lines += ["", "Mean ± sample std over runs that differ only by seed. Machine: " + _machines_note(table) + "."]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "$": r"\$", "~": r"\textasciitilde{}", "^": r"\^{}"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def latex(table: Table) -> str:
    tags = machine_tags(table)
    header = [table.row_header] + [h for _, h in table.columns] + ["runs"] + (["machine"] if tags else [])
    lines = [f"% {table.title}; mean $\\pm$ sample std over seeds. Machine: {_machines_note(table)}",
             "\\begin{tabular}{l" + "r" * (len(header) - 1) + "}", "\\toprule",
             " & ".join(_tex(h) for h in header) + " \\\\", "\\midrule"]
    for i, row in enumerate(table.rows):
        cells = [row.cells[k].text(column_format(k)[1], latex=True) for k, _ in table.columns]
        lines.append(" & ".join([_tex(row.label), *cells, str(len(row.runs))] + ([tags[i]] if tags else [])) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_json(table: Table) -> dict[str, Any]:
    several = len(table.machines) > 1  # as in markdown: rows name their machines only when they differ

    def row(r: Row) -> dict[str, Any]:
        out: dict[str, Any] = {"label": r.label, "workdirs": [x.workdir for x in r.runs]}
        if several:
            out["machines"] = sorted({_machine(x.results) for x in r.runs})
        return {**out, "metrics": {k: dataclasses.asdict(c) for k, c in r.cells.items()}}

    return {"title": table.title, "columns": [k for k, _ in table.columns], "machines": table.machines,
            "rows": [row(r) for r in table.rows]}
