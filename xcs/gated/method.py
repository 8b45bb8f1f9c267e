"""The check of config.model.encoder.gated: the rules of GatedSpec and of its gate gradients."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import require
from xcs.gated.layer import gated_spec


def check(config: ml_collections.ConfigDict) -> None:
    spec = gated_spec(config)  # None when disabled; GatedSpec refuses bad choices and ranges in one line
    if spec is None:
        return
    width = config.model.encoder.width
    require(spec.block_size == 0 or width % spec.block_size == 0, config, "model.encoder.gated.block_size",
            f"must divide the encoder width {width} (0 = the whole width)")
