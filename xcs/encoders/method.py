"""The declarations of the bag, dense and dense_bag encoders."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import choice, require
from xcs.core.protocols import EncoderMethod
from xcs.encoders.dense_bag import COMBINE, make_dense_bag_encoder
from xcs.encoders.mlp import NORMALIZATIONS, make_bag_encoder, make_dense_encoder
from xcs.gated.method import check as check_gated


def check_mlp(config: ml_collections.ConfigDict) -> None:
    """The keys every MLP encoder reads, and its gated layer if one is enabled."""
    enc = config.model.encoder
    require(enc.width >= 1, config, "model.encoder.width", "must be >= 1")
    require(enc.mlp_layers >= 0, config, "model.encoder.mlp_layers", "must be >= 0")
    require(0.0 <= enc.dropout < 1.0, config, "model.encoder.dropout", "must be in [0, 1)")
    require(0.0 <= enc.input_dropout < 1.0, config, "model.encoder.input_dropout", "must be in [0, 1)")
    require(enc.embedding_init_std > 0, config, "model.encoder.embedding_init_std", "must be > 0")
    choice(config, "model.encoder.normalize", NORMALIZATIONS)
    check_gated(config)


def check_bag(config: ml_collections.ConfigDict) -> None:
    check_mlp(config)
    gated = config.model.encoder.gated
    require(not gated.enabled or gated.position == "residual", config, "model.encoder.gated.position",
            "the bag encoder has no dense input layer to gate; use position=residual")


def check_dense_bag(config: ml_collections.ConfigDict) -> None:
    check_bag(config)
    choice(config, "model.encoder.combine", COMBINE)
    enc = config.model.encoder
    require(enc.combine != "concat" or enc.width % 2 == 0, config, "model.encoder.width",
            "combine=concat needs an even width (each part gets width / 2)")


BAG = EncoderMethod(name="bag", build=make_bag_encoder, check=check_bag, sparse_embedding=True,
                    summary="tf-idf weighted embedding bag over the sparse features, then a residual MLP")
DENSE = EncoderMethod(name="dense", build=make_dense_encoder, check=check_mlp,
                      summary="a projection of dense features x (or a gated input layer), then a residual MLP")
DENSE_BAG = EncoderMethod(name="dense_bag", build=make_dense_bag_encoder, check=check_dense_bag,
                          summary="dense features (e.g. frozen sentence embeddings) and a tf-idf bag, combined")
