"""Table: asynchronous vs synchronous SGD on Kronecker inputs, τ ∈ {0, 2, 8, 32} × workers ∈ {1, 4, 16}.

    python launch.py --config=configs/tables/kronecker.py --sweep --workdir=runs/tables/kronecker
    python -m xcs.report runs/tables/kronecker --out=experiments/results/kronecker

The classifier of configs/kronecker.py (primal Kronecker encoder, σ_b(w_rᵀx), + dense head, Adam)
trained by xcs.train (sync, and train.mode=async with every τ × W, delay fixed = min(τ, W − 1), or
`delay=random`); columns P@1/P@3 and time, training-loss curves. The paper's own network (fixed a,
plain SGD, full training loss, dense / primal / structured representations) has its table from
its trainer:

    python -m experiments.kronecker_train --config=configs/kronecker.py:paper --reprs=structured,primal,dense \
        --out=experiments/results/kronecker_paper/reprs.json
    python -m experiments.kronecker_train --config=configs/kronecker.py:paper --taus=0,2,8,32 --workers=1,4,16 \
        --out=experiments/results/kronecker_paper/async.json

and the time per iteration vs d from `python -m experiments.benchmarks.kronecker`.

Variants (`:key=value,...`):
  mode, tau, workers  the run that get_config gives alone (configs/kronecker.py's keys; default sync)
  delay=fixed|random  the delay distribution of the async rows
  seeds=N             runs per row with seeds 0..N-1 (default 2, 1 with smoke)
  smoke               seconds-long runs (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import kronecker
from xcs.config import given_keys, parse_arg

VARIANTS = {"mode": "sync", "tau": 2, "workers": 4, "delay": "fixed", "seeds": 2, "smoke": False}
TAUS = (0, 2, 8, 32)
WORKERS = (1, 4, 16)


def _variant(arg: str | None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if v.smoke and "seeds" not in given_keys(arg):
        v.seeds = 1
    return v


def _arg(v: ml_collections.ConfigDict, mode: str, tau: int, workers: int) -> str:
    return f"mode={mode},tau={tau},workers={workers},delay={v.delay}" + (",smoke" if v.smoke else "")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """One run of the table: the `mode`/`tau`/`workers` variant (sync unless the sweep's `arg` says otherwise)."""
    v = _variant(arg)
    return kronecker.build(mode=v.mode, tau=v.tau, workers=v.workers, delay=v.delay, smoke=v.smoke)


def sweep(add, arg: str | None = None) -> None:
    """The synchronous run and every τ × W, one run per seed."""
    v = _variant(arg)
    for seed in range(v.seeds):
        add(arg=_arg(v, "sync", 0, 1), seed=seed)
        for tau in TAUS:
            for workers in WORKERS:
                add(arg=_arg(v, "async", tau, workers), seed=seed)


def _row(config: dict[str, Any]) -> str:
    if config["train"]["mode"] == "sync":
        return "sync"
    a = config["async_"]
    bound = min(a["max_staleness"], a["workers"] - 1)
    return f"async τ={a['max_staleness']} W={a['workers']} ({a['delay']}, delay <= {bound})"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title="Asynchronous (bounded staleness) vs synchronous SGD, Kronecker-input classifier",
        row_header="train mode",
        rows=_row,
        columns=["P@1", "P@3", "seconds_per_epoch", "peak_rss_mb"],
        at_k=["P"],
        curves=["loss"],
    )
