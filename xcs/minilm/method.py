"""The end-to-end MiniLM encoder's declaration."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import choice, require
from xcs.core.protocols import EncoderMethod
from xcs.minilm.encoder import make_minilm_encoder
from xcs.text.minilm import POOLINGS


def check(config: ml_collections.ConfigDict) -> None:
    require(config.data.text.inputs == "tokens", config, "data.text.inputs",
            "the minilm encoder trains on token ids: set data.text.inputs=tokens")
    choice(config, "data.text.pooling", POOLINGS)
    require(not config.model.encoder.gated.enabled, config, "model.encoder.gated.enabled",
            "the minilm encoder has no gated layer")
    make_minilm_encoder(config, 0)  # its width must be the pretrained hidden size (read from the weights)


METHOD = EncoderMethod(name="minilm", build=make_minilm_encoder, check=check,
                       summary="all-MiniLM-L6-v2 fine-tuned end to end on the texts' token ids")
