"""Table: the dense xcs model (configs/xmc.py settings) beside napkinXC's PLT and omikuji.

    make table-baselines                      # = the three commands below, on wordnet_hypernyms
    python launch.py --config=configs/tables/baselines.py --sweep --workdir=runs/tables/baselines
    python -m experiments.peers --config=configs/tables/baselines.py --workdir=runs/tables/baselines
    python -m xcs.report runs/tables/baselines --out=experiments/results/baselines

Variants (`:key=value,...`):
  data=NAME   XC-format data set in $XCS_DATA_DIR/NAME (default wordnet_hypernyms; synthetic with smoke)
  seeds=N     xcs runs with seeds 0..N-1 (mean ± std in the table; default 3, 2 with smoke)
  smoke       seconds-long runs on the small synthetic data (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import xmc
from xcs.config import given_keys, parse_arg

VARIANTS = {"data": "", "seeds": 3, "smoke": False}


def _variant(arg: str | None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if not v.data:
        v.data = "synthetic" if v.smoke else "wordnet_hypernyms"
    if v.smoke and "seeds" not in given_keys(arg):
        v.seeds = 2
    return v


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = _variant(arg)
    return xmc.build(data=v.data, smoke=v.smoke)


def sweep(add, arg: str | None = None) -> None:
    """The dense xcs model, one run per seed."""
    for seed in range(_variant(arg).seeds):
        add(seed=seed)


def peers(add, arg: str | None = None) -> None:
    """experiments/peers.py methods on the same data; keyword arguments are the method's own settings."""
    add(method="napkinxc_plt")  # napkinXC defaults: hierarchical k-means tree, arity 2, 100 leaves, liblinear
    add(method="omikuji")  # omikuji defaults (Parabel-like): 3 trees, balanced 2-means


def _row(config: dict[str, Any]) -> str:
    if "peer" in config:
        return {"napkinxc_plt": "napkinXC PLT", "omikuji": "omikuji (Parabel)"}[config["peer"]["method"]]
    enc, head = config["model"]["encoder"], config["model"]["head"]
    return f"xcs {enc['name']} d={enc['width']} + {head['name']} head"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title=f"Baselines on {_variant(arg).data}",
        row_header="method",
        rows=_row,
        columns=["P@1", "P@3", "P@5", "nDCG@5", "PSP@5", "train_seconds", "seconds_per_epoch", "peak_rss_mb"],
        at_k=["P", "PSP"],
        curves=["loss"],
    )
