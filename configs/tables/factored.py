"""Table: the factored exact-update output layer (Vincent et al. 2015) vs the naive output layer.

    python launch.py --config=configs/tables/factored.py --sweep --workdir=runs/tables/factored
    python -m xcs.report runs/tables/factored --out=experiments/results/factored
    python -m experiments.benchmarks.factored --out=experiments/results/factored_speed.json   # speed table

Each loss of the spherical family is trained twice with the same encoder (Adam) and the same plain
SGD on the output layer: once through the factored head (W = V·U, O(d²) per example) and once
through a naive dense head (config.train.optimizer.head = sgd without momentum at the factored
learning rate). The two compute the same updates (tests/test_factored.py checks a train step of
each against the other), so P@k should agree and only the seconds per epoch differ.

Variants (`:key=value,...`):
  data=NAME   synthetic (default: a large-D synthetic set) or XC-format data in $XCS_DATA_DIR/NAME
              (e.g. wordnet_hypernyms)
  head=NAME   factored (default) | dense: the naive output layer trained the same way
  loss=NAME   squared_error (default) | spherical_softmax | taylor_softmax | zloss
  smoke       seconds-long runs on the small synthetic data (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import xmc
from xcs.config import parse_arg

VARIANTS = {"data": "synthetic", "head": "factored", "loss": "squared_error", "smoke": False}
LOSSES = ("squared_error", "spherical_softmax")
# Per-loss SGD settings of the output layer (shared by both heads): learning rate, init scale of V.
SGD = {"squared_error": (0.01, 0.1), "spherical_softmax": (0.01, 1.0), "taylor_softmax": (0.01, 1.0),
       "zloss": (0.01, 1.0)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if v.head not in ("factored", "dense"):
        raise ValueError(f"configs/tables/factored.py: head={v.head!r}, expected factored or dense")
    if v.loss not in SGD:
        raise ValueError(f"configs/tables/factored.py: loss={v.loss!r}, expected one of {sorted(SGD)}")
    config = xmc.get_config(f"data={v.data}" + (",smoke" if v.smoke else ""))
    if v.data == "synthetic" and not v.smoke:
        s = config.data.synthetic  # a large output space, where the factored update pays off
        s.num_train, s.num_test, s.num_features, s.num_labels, s.num_clusters = 50000, 10000, 65536, 100000, 1000
    config.loss.name = v.loss
    config.model.head.name = v.head
    lr, init_scale = SGD[v.loss]
    config.factored.learning_rate = lr
    config.factored.init_scale = init_scale
    # The naive head: the same plain SGD on the same loss (its optimizer is unused by the factored head).
    head_opt = config.train.optimizer.head
    head_opt.name, head_opt.momentum, head_opt.learning_rate = "sgd", 0.0, lr
    head_opt.weight_decay = config.factored.weight_decay
    return config


def sweep(add, arg: str | None = None) -> None:
    """Each loss through the factored head and through the naive head."""
    base = arg or ""
    for loss in LOSSES:
        for head in ("factored", "dense"):
            add(arg=",".join(filter(None, [base, f"head={head}", f"loss={loss}"])))


def _row(config: dict[str, Any]) -> str:
    head = config["model"]["head"]["name"]
    return f"{config['loss']['name']}, {'factored (exact)' if head == 'factored' else 'naive dense'} output layer"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title=f"Factored vs naive output layer on {parse_arg(arg, VARIANTS).data}",
        row_header="loss, output layer",
        rows=_row,
        columns=["P@1", "P@3", "P@5", "nDCG@5", "train_seconds", "seconds_per_epoch", "peak_rss_mb"],
        at_k=["P"],
        curves=["loss"],
    )
