"""Encoders: map a batch to embeddings h [B, d]."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import UserError
from xcs.gated.layer import GatedSpec, gated_spec, make_gated_layer

NORMALIZATIONS = ("none", "layernorm", "l2")


class ResidualStack(nn.Module):
    """Normalisation, [a gated residual block,] then `layers` pre-norm residual MLP blocks of the same width."""

    width: int
    layers: int
    dropout: float
    normalize: str
    gated: GatedSpec | None = None  # position=residual: h + G(LN h) right after the normalisation

    @nn.compact
    def __call__(self, h: jax.Array, train: bool) -> jax.Array:
        if self.normalize == "layernorm":
            h = nn.LayerNorm(name="norm")(h)
        elif self.normalize == "l2":
            h = h / (jnp.linalg.norm(h, axis=-1, keepdims=True) + 1e-6)
        elif self.normalize != "none":
            raise UserError(f"config.model.encoder.normalize={self.normalize!r}: expected one of {NORMALIZATIONS}")
        if self.gated is not None:
            h = h + make_gated_layer(self.gated, self.width, "gated")(nn.LayerNorm(name="gated_norm")(h), train)
        for i in range(self.layers):
            y = nn.LayerNorm(name=f"block{i}_norm")(h)
            y = nn.gelu(nn.Dense(self.width, name=f"block{i}_in")(y))
            y = nn.Dropout(self.dropout, deterministic=not train)(y)
            h = h + nn.Dense(self.width, name=f"block{i}_out")(y)
        return nn.Dropout(self.dropout, deterministic=not train)(h)


class BagEncoder(nn.Module):
    """tf-idf weighted sum of feature embeddings over feat_idx, then a residual MLP.

    The gather is [B, F_max, d] (features per point, not the vocabulary), and its gradient is a
    scatter-add into the embedding table. With batch["feat_rows"] (the table's rows at feat_idx, gathered by the
    train step when config.train.sparse_embedding is on, xcs.train.sparse_table) the module reads those instead,
    so the step differentiates only the rows the batch touches.
    """

    num_features: int
    width: int
    mlp_layers: int
    dropout: float
    input_dropout: float
    normalize: str
    # Small on purpose: Adam moves each weight by ~lr per step, so a table initialised at unit
    # scale barely leaves its random projection within a few epochs.
    embedding_init_std: float = 0.02
    gated: GatedSpec | None = None

    @nn.compact
    def __call__(self, batch: dict[str, jax.Array], train: bool) -> jax.Array:
        idx, val = batch["feat_idx"], batch["feat_val"]
        if train and self.input_dropout > 0:
            keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.input_dropout, val.shape)
            val = jnp.where(keep, val / (1.0 - self.input_dropout), 0.0)
        init = nn.initializers.normal(stddev=self.embedding_init_std)
        table = self.param("embedding", init, (self.num_features, self.width), jnp.float32)
        rows = batch["feat_rows"] if "feat_rows" in batch else jnp.take(table, idx, axis=0)
        h = jnp.einsum("bf,bfd->bd", val, rows)
        if self.gated is not None and self.gated.position != "residual":
            raise UserError(f"config.model.encoder.gated.position={self.gated.position!r}: the bag encoder has no "
                             "dense input layer to gate; use position=residual")
        return ResidualStack(self.width, self.mlp_layers, self.dropout, self.normalize, self.gated,
                             name="mlp")(h, train)


class DenseEncoder(nn.Module):
    """A linear projection of dense features x, then a residual MLP."""

    num_features: int
    width: int
    mlp_layers: int
    dropout: float
    input_dropout: float
    normalize: str
    gated: GatedSpec | None = None

    @nn.compact
    def __call__(self, batch: dict[str, jax.Array], train: bool) -> jax.Array:
        x = nn.Dropout(self.input_dropout, deterministic=not train)(batch["x"])
        if self.gated is not None and self.gated.position == "input":
            # The gated layer is the projection; its gates are signs of designated units of x.
            h = make_gated_layer(self.gated, self.width, "gated")(x, train)
            return ResidualStack(self.width, self.mlp_layers, self.dropout, self.normalize, name="mlp")(h, train)
        h = nn.Dense(self.width, name="project")(x)
        return ResidualStack(self.width, self.mlp_layers, self.dropout, self.normalize, self.gated,
                             name="mlp")(h, train)


def make_bag_encoder(config: ml_collections.ConfigDict, num_features: int) -> BagEncoder:
    enc = config.model.encoder
    return BagEncoder(num_features=num_features, width=enc.width, mlp_layers=enc.mlp_layers, dropout=enc.dropout,
                      input_dropout=enc.input_dropout, normalize=enc.normalize,
                      embedding_init_std=enc.embedding_init_std, gated=gated_spec(config))


def make_dense_encoder(config: ml_collections.ConfigDict, num_features: int) -> DenseEncoder:
    enc = config.model.encoder
    return DenseEncoder(num_features=num_features, width=enc.width, mlp_layers=enc.mlp_layers, dropout=enc.dropout,
                        input_dropout=enc.input_dropout, normalize=enc.normalize, gated=gated_spec(config))
