"""The dense head's declaration: what xcs.registry and validate know of it."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import require
from xcs.core.protocols import HeadMethod
from xcs.dense.head import make_dense_head


def check(config: ml_collections.ConfigDict) -> None:
    require(config.model.head.label_chunk >= 1, config, "model.head.label_chunk", "must be >= 1")


METHOD = HeadMethod(
    name="dense", build=make_dense_head, summary="a full [d, L] linear layer (softmax, BCE, hinge, spherical losses)",
    check=check, knn=True, mesh=True, bfloat16=True)
