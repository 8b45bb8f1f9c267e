"""The Kronecker encoder's declaration: it reads the factors of source=kronecker and nothing else."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import require
from xcs.core.protocols import EncoderMethod
from xcs.kronecker.layer import make_kronecker_encoder


def check(config: ml_collections.ConfigDict) -> None:
    require(config.model.encoder.width >= 1, config, "model.encoder.width", "must be >= 1")
    require(not config.model.encoder.gated.enabled, config, "model.encoder.gated.enabled",
            "the kronecker encoder has no gated layer")
    require(config.kronecker.init_std > 0, config, "kronecker.init_std", "must be > 0")
    require(all(d >= 1 for d in config.data.kronecker.dims), config, "data.kronecker.dims", "must all be >= 1")


METHOD = EncoderMethod(name="kronecker", build=make_kronecker_encoder, sources=("kronecker",), check=check,
                       summary="a shifted-ReLU layer on x = f_0 ⊗ f_1 ⊗ ... computed from the factors")
