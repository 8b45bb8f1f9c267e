"""Table: the factored exact-update output layer (Vincent et al. 2015) vs the naive output layer.

    make table-factored      # = the two commands below (quality table, both data sets)
    python launch.py --config=configs/tables/factored.py --sweep --workdir=runs/tables/factored
    python -m xcs.report runs/tables/factored --table=configs/tables/factored.py --out=experiments/results/factored
    python -m experiments.benchmarks.factored --labels 10000,100000,1000000,3000000 --dims 128,256,512 \
        --batch 128 --out=experiments/results/factored_speed.json                     # speed-up table

Each loss of the spherical family is trained twice with the same encoder (Adam) and the same plain
SGD on the output layer: once through the factored head (W = V·U, O(d²) per example) and once
through a naive dense head (config.train.optimizer.head = sgd without momentum at the factored
learning rate). The two compute the same updates (tests/test_factored.py checks a train step of
each against the other), so P@k should agree and only the seconds per epoch differ.

Variants (`:key=value,...`):
  data=NAME   synthetic (a large-D synthetic set) or XC-format data in $XCS_DATA_DIR/NAME (e.g.
              wordnet_hypernyms); get_config's default is synthetic, the sweep's default both of
              SWEEP_DATA (one table, the data set in the row label)
  head=NAME   factored (default) | dense: the naive output layer trained the same way
  loss=NAME   squared_error (default) | spherical_softmax | taylor_softmax | zloss
  smoke       seconds-long runs on the small synthetic data (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import xmc
from xcs.config import parse_arg

VARIANTS = {"data": "", "head": "factored", "loss": "squared_error", "smoke": False}
LOSSES = ("squared_error", "spherical_softmax")
SWEEP_DATA = ("wordnet_hypernyms", "synthetic")
# Per-loss SGD settings of the output layer (shared by both heads): learning rate, init scale of V.
SGD = {"squared_error": (0.01, 0.1), "spherical_softmax": (0.01, 1.0), "taylor_softmax": (0.01, 1.0),
       "zloss": (0.01, 1.0)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    v.data = v.data or "synthetic"
    if v.head not in ("factored", "dense"):
        raise ValueError(f"configs/tables/factored.py: head={v.head!r}, expected factored or dense")
    if v.loss not in SGD:
        raise ValueError(f"configs/tables/factored.py: loss={v.loss!r}, expected one of {sorted(SGD)}")
    config = xmc.build(data=v.data, smoke=v.smoke)
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
    """Each loss through the factored head and through the naive head, on each data set."""
    v = parse_arg(arg, VARIANTS)
    for data in [v.data] if v.data else (["synthetic"] if v.smoke else SWEEP_DATA):
        for loss in LOSSES:
            for head in ("factored", "dense"):
                add(arg=",".join([f"data={data}", f"head={head}", f"loss={loss}"] + (["smoke"] if v.smoke else [])))


def _row(config: dict[str, Any]) -> str:
    head = config["model"]["head"]["name"]
    layer = "factored (exact)" if head == "factored" else "naive dense"
    return f"{config['data']['name']}: {config['loss']['name']}, {layer} output layer"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title="Factored (exact update) vs naive output layer, same loss and SGD",
        row_header="data: loss, output layer",
        rows=_row,
        columns=["P@1", "P@3", "P@5", "nDCG@5", "train_seconds", "seconds_per_epoch", "peak_rss_mb"],
        at_k=["P"],
        curves=["loss"],
    )
