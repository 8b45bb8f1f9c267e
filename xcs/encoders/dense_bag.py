"""dense_bag: dense features x (e.g. frozen sentence embeddings) projected, combined with a tf-idf bag.

Sparse lexical features and dense semantic ones are complementary in XMC: the bag encoder's
embedding of feat_idx/feat_val and a linear projection of x are summed (each `width` wide) or
concatenated (each `width / 2`, so the head still sees `width`), then go through the same
normalisation and residual MLP as the other encoders.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import UserError
from xcs.encoders.mlp import BagEncoder, ResidualStack
from xcs.gated.layer import GatedSpec, gated_spec

COMBINE = ("sum", "concat")


class DenseBagEncoder(nn.Module):
    """h = MLP(norm(combine(x W_x + b, Σ_f v_f E[f]))) with combine = sum or concat."""

    num_features: int
    width: int
    mlp_layers: int
    dropout: float
    input_dropout: float  # share of sparse features dropped per point (training only), as in the bag encoder
    normalize: str
    combine: str = "sum"
    embedding_init_std: float = 0.02
    gated: GatedSpec | None = None

    def part_width(self) -> int:
        return self.width if self.combine == "sum" else self.width // 2

    @nn.compact
    def __call__(self, batch: dict[str, jax.Array], train: bool) -> jax.Array:
        if self.combine not in COMBINE:
            raise UserError(f"config.model.encoder.combine={self.combine!r}: expected one of {', '.join(COMBINE)}")
        if self.combine == "concat" and self.width % 2:
            raise UserError(f"config.model.encoder.width={self.width}: combine=concat needs an even width "
                             "(each part gets width / 2)")
        # The bag part alone: no MLP, no normalisation, no dropout on its output (the stack below has them).
        bag = BagEncoder(self.num_features, self.part_width(), mlp_layers=0, dropout=0.0,
                         input_dropout=self.input_dropout, normalize="none",
                         embedding_init_std=self.embedding_init_std, name="bag")(batch, train)
        dense = nn.Dense(self.part_width(), name="project")(batch["x"])
        h = dense + bag if self.combine == "sum" else jnp.concatenate([dense, bag], axis=-1)
        return ResidualStack(self.width, self.mlp_layers, self.dropout, self.normalize, self.gated,
                             name="mlp")(h, train)


def make_dense_bag_encoder(config: ml_collections.ConfigDict, num_features: int) -> DenseBagEncoder:
    enc = config.model.encoder
    if enc.combine not in COMBINE:  # refused before any work, not at the first trace
        raise UserError(f"config.model.encoder.combine={enc.combine!r}: expected one of {', '.join(COMBINE)}")
    if enc.combine == "concat" and enc.width % 2:
        raise UserError(f"config.model.encoder.width={enc.width}: combine=concat needs an even width")
    return DenseBagEncoder(num_features=num_features, width=enc.width, mlp_layers=enc.mlp_layers,
                           dropout=enc.dropout, input_dropout=enc.input_dropout, normalize=enc.normalize,
                           combine=enc.combine, embedding_init_std=enc.embedding_init_std, gated=gated_spec(config))
