"""Tree-gated conditional computation (Cho & Bengio 2014) against dense layers, in an encoder.

Variants (`--config=configs/gated.py:layer=tree,depth=6,smoke`):
  data=region           the synthetic region task (default): dense x, the class is argmax x A_r
                        with a different A_r in each of 2^region_bits regions (xcs.data.region);
                        one label per point, so P@1 is the accuracy. The gated layer is the dense
                        encoder's input projection, gated by the signs of x[:depth].
  data=NAME             XC-format data in $XCS_DATA_DIR/NAME (e.g. wordnet_hypernyms): the
                        bag-of-features encoder with the gated layer as a residual block after
                        the embedding, in `depth`-bit blocks of 64 units each with its own gates.
  layer=tree            prefix-tree gated layer: 2^(k+1) - 1 blocks stored, k + 1 used per example
  layer=table           the naive one-block-per-bit-pattern layer: 2^k stored, 1 used
  layer=dense_flops     a dense MLP with the tree layer's FLOPs per example
  layer=dense_params    a dense MLP with the tree layer's parameters
  depth=K               gating bits k
  st                    gate_gradient=straight_through (XC data only: on the region task the gates
                        are raw input features, and the config refuses it)
  smoke                 a run that takes seconds (tests run it end to end)
"""

from __future__ import annotations

import ml_collections

from configs import default, xmc
from xcs.config import config_from_arg


def build(*, data: str = "region", layer: str = "tree", depth: int = 6, st: bool = False,
          smoke: bool = False) -> ml_collections.ConfigDict:
    config = default.get_config()
    gated = config.model.encoder.gated
    gated.enabled = True
    gated.kind = layer
    gated.depth = depth
    gated.gate_gradient = "straight_through" if st else "none"
    if data == "region":
        config.data.source = "region"
        config.data.name = "region"
        config.model.encoder.name = "dense"
        config.model.encoder.width = 64
        gated.position = "input"
        gated.gate_units = "shared"
        config.train.epochs = 20.0
        config.train.batch_size = 128
        config.eval.write_predictions = False
    else:
        config.data.source = "xmc_repo"
        config.data.name = data
        gated.position = "residual"
        gated.block_size = 64
    if smoke:
        _smoke(config)
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return config_from_arg(build, arg)


def _smoke(config: ml_collections.ConfigDict) -> None:
    xmc.apply_smoke(config)
    r = config.data.region
    r.num_train, r.num_test, r.dim, r.region_bits = 1000, 200, 8, 3
    config.model.encoder.gated.depth = min(config.model.encoder.gated.depth, 3)
    config.model.encoder.gated.block_size = 0
