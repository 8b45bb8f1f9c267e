"""Table: tree-gated conditional computation vs dense layers of equal FLOPs / parameters and the naive table.

    python launch.py --config=configs/tables/gated.py:data=region --sweep --workdir=runs/tables/gated_region
    python -m xcs.report runs/tables/gated_region --out=experiments/results/gated_region
    python launch.py --config=configs/tables/gated.py:data=wordnet_hypernyms --sweep \
        --workdir=runs/tables/gated_wordnet
    python -m xcs.report runs/tables/gated_wordnet --out=experiments/results/gated_wordnet
    # or from the committed run summaries:
    python -m xcs.report experiments/results/gated_wordnet/runs --table configs/tables/gated.py:data=wordnet_hypernyms \
        --out=experiments/results/gated_wordnet

Rows: the encoder's gated layer as tree / table (naive) / dense MLP of the tree's FLOPs / dense MLP
of the tree's parameters (configs/gated.py), and on XC data also the tree with straight-through
gate gradients (on the region task the gates are raw input features: nothing to train). The row
label carries the layer's own parameters and FLOPs per example (xcs.gated.layer.layer_cost),
the columns P@1/3/5 (P@1 is the accuracy on the region task), the whole model's parameters and
seconds per epoch.

Variants (`:key=value,...`):
  data=region|NAME   the synthetic region task (default) or XC-format data in $XCS_DATA_DIR/NAME
  layer=KIND         the run that get_config gives alone: tree | table | dense_flops | dense_params
  depth=K            gating bits of the tree and table layers (default 6)
  st                 the run that get_config gives alone uses straight-through gate gradients
  seeds=N            runs per row with seeds 0..N-1 (mean ± std; default 3, 1 with smoke)
  smoke              seconds-long runs (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import gated
from xcs.config import given_keys, parse_arg
from xcs.gated.layer import GatedSpec, layer_cost

VARIANTS = {"data": "region", "layer": "tree", "depth": 6, "st": False, "seeds": 3, "smoke": False}
LAYERS = ("tree", "table", "dense_flops", "dense_params")


def _variant(arg: str | None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if v.smoke and "seeds" not in given_keys(arg):
        v.seeds = 1
    return v


def _arg(v: ml_collections.ConfigDict, layer: str, st: bool = False) -> str:
    return f"data={v.data},layer={layer},depth={v.depth}" + (",st" if st else "") + (",smoke" if v.smoke else "")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """One run of the table: the `layer` variant (tree unless the sweep's `arg` says otherwise)."""
    v = _variant(arg)
    return gated.build(data=v.data, layer=v.layer, depth=v.depth, st=v.st, smoke=v.smoke)


def sweep(add, arg: str | None = None) -> None:
    """Each layer kind, one run per seed; on XC data also the tree with straight-through gate gradients."""
    v = _variant(arg)
    runs = [(layer, False) for layer in LAYERS] + ([("tree", True)] if v.data != "region" else [])
    for layer, st in runs:
        for seed in range(v.seeds):
            add(arg=_arg(v, layer, st), seed=seed)


def _row(config: dict[str, Any]) -> str:
    enc, data = config["model"]["encoder"], config["data"]
    g = enc["gated"]
    spec = GatedSpec(kind=g["kind"], position=g["position"], depth=g["depth"], block_size=g["block_size"],
                     gate_units=g["gate_units"], gate_gradient=g["gate_gradient"])
    d_in = data["region"]["dim"] if g["position"] == "input" else enc["width"]
    cost = layer_cost(spec, d_in, enc["width"])
    st = ", straight-through" if g["gate_gradient"] == "straight_through" else ""
    return (f"{g['kind']} k={g['depth']}{st} (layer {_si(cost['params'])} params, "
            f"{_si(cost['flops_per_example'])} FLOP/ex)")


def _si(n: int) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title=f"Tree-gated layer vs dense layers on {_variant(arg).data}",
        row_header="gated layer",
        rows=_row,
        columns=["P@1", "P@3", "P@5", "num_params", "seconds_per_epoch", "peak_rss_mb"],
        at_k=["P"],
        curves=["loss"],
    )
