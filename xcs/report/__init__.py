"""Results of many runs as one table: `python -m xcs.report DIR [--table configs/tables/NAME.py[:arg]]`.

Reads every results.json under DIR (with the config.json beside it), groups runs that differ
only by seed (mean ± sample std), names rows and columns as the table config module says
(xcs/report/table.py), and writes table.md, table.tex, table.json and PNG plots.
"""

from __future__ import annotations

import os
from typing import Any

from xcs.report.runs import RunResult, find_runs, group
from xcs.report.table import Table, build, latex, load_spec, markdown, to_json


def report(directory: str, out: str | None = None, table: str | None = None, plots: bool = True
           ) -> dict[str, Any]:
    """Builds the table of `directory` and writes its files into `out` (default DIR/report).

    Returns {"markdown", "latex", "table" (Table), "files"}.
    """
    import json

    spec, source = load_spec(directory, table)
    runs = find_runs(directory)
    t = build(runs, spec)
    out = out or os.path.join(directory, "report")
    os.makedirs(out, exist_ok=True)
    md, tex = markdown(t), latex(t)
    files = []
    for name, text in (("table.md", md), ("table.tex", tex),
                       ("table.json", json.dumps({"source": source, **to_json(t)}, indent=2) + "\n")):
        path = os.path.join(out, name)
        with open(path, "w") as f:
            f.write(text)
        files.append(path)
    if plots:
        from xcs.report.plots import write_plots

        files += write_plots(t, spec, directory, out)
    return {"markdown": md, "latex": tex, "table": t, "files": files}


__all__ = ["report", "find_runs", "group", "build", "markdown", "latex", "load_spec", "RunResult", "Table"]
