"""The benchmark convention (../shared/DESIGN.md): a Markdown table on stdout and a JSON file.

`{"machine": {...}, "rows": [{...}, ...]}`, snake_case keys with units in the name; `step_ms` is
the median over repeats after a warm-up (which includes compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax

from xcs.system import machine_info


def reset_peak_rss() -> None:
    """Resets the kernel's peak-RSS mark (VmHWM) so each row reports its own peak (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """VmHWM of this process since the last reset_peak_rss(), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def tree_mb(tree: Any) -> float:
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree)) / 2**20


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn() in ms; fn must block on its result (jax.block_until_ready)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def write_report(rows: list[dict[str, Any]], out: str | None) -> None:
    print(markdown_table(rows))
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump({"machine": machine_info(), "rows": rows}, f, indent=2)
            f.write("\n")
        print(f"wrote {out}")


def shapes_main(doc: str, measure: Callable[..., dict], default_shapes: str, quick_shapes: str, what: str) -> None:
    """The command line of a benchmark over array shapes: --shapes (comma-separated, dims joined by x), --repeats,
    --quick (`quick_shapes`, 2 repeats: for tests), --out; `measure(*dims, repeats=...)` gives one table row."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=default_shapes, help=f"comma-separated {what}")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    shapes = quick_shapes if args.quick else args.shapes
    repeats = 2 if args.quick else args.repeats
    write_report([measure(*map(int, s.split("x")), repeats=repeats) for s in shapes.split(",")], args.out)
