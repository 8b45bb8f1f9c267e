"""Models: an encoder and a head, each chosen by name from a plain registry.

A registry maps a name to a factory `(config, ...) -> flax Module`, so a new head or encoder is
one new module plus one line here; the training loop does not change.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import ml_collections

from xcs.data.dataset import Dataset
from xcs.losses import LossFn
from xcs.models.combined import make_dense_bag_encoder
from xcs.models.encoders import make_bag_encoder, make_dense_encoder
from xcs.models.factored_head import make_factored_head
from xcs.models.head_wrappers import ACTIVATIONS, AuxObjective, Intermediate
from xcs.models.heads import make_dense_head
from xcs.models.kronecker import make_kronecker_encoder
from xcs.models.lsh_head import make_lsh_head
from xcs.models.sparse_head import make_sparse_head
from xcs.models.text_encoder import make_minilm_encoder
from xcs.sparsity.clusters import cached_label_clusters

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "bag": make_bag_encoder, "dense": make_dense_encoder, "kronecker": make_kronecker_encoder,
    "dense_bag": make_dense_bag_encoder, "minilm": make_minilm_encoder}
HEADS: dict[str, Callable[..., nn.Module]] = {
    "dense": make_dense_head, "factored": make_factored_head, "sparse": make_sparse_head,
    "lsh": make_lsh_head}


class XMCModel(nn.Module):
    """encoder(batch) -> h [B, d]; the head turns h into a loss or a top-k."""

    encoder: nn.Module
    head: nn.Module

    def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        return self.encoder(batch, train)

    def loss(self, batch: dict[str, jax.Array], loss_fn: LossFn, train: bool) -> jax.Array:
        """Per-point loss [B]."""
        return self.head.loss(self.encoder(batch, train), batch["label_idx"], batch["label_mask"], loss_fn)

    def topk(self, batch: dict[str, jax.Array], k: int) -> tuple[jax.Array, jax.Array]:
        return self.head.topk(self.encoder(batch, False), k)


def _pick(registry: dict[str, Callable[..., nn.Module]], name: str, key: str) -> Callable[..., nn.Module]:
    if name not in registry:
        raise ValueError(f"{key}={name!r}: expected one of {sorted(registry)}")
    return registry[name]


def build_model(config: ml_collections.ConfigDict, num_features: int, num_labels: int,
                data: Dataset | None = None, workdir: str | None = None) -> XMCModel:
    """The model of `config.model` for a data set of this many features and labels.

    `data` is needed by parts built from the training data (the label clusters of the auxiliary
    objective, config.aux), which are cached in `workdir`.
    """
    if (config.model.encoder.name == "kronecker") != (config.data.source == "kronecker"):
        # Kronecker batches carry factor0, factor1, ... and nothing else; only that encoder reads them.
        raise ValueError(f"config.model.encoder.name={config.model.encoder.name!r} with config.data.source="
                         f"{config.data.source!r}: the 'kronecker' encoder and source go together")
    encoder = _pick(ENCODERS, config.model.encoder.name, "config.model.encoder.name")(config, num_features)
    head_config = config.model.head
    make_head = _pick(HEADS, head_config.name, "config.model.head.name")
    if head_config.intermediate > 0:
        if head_config.intermediate_activation not in ACTIVATIONS:
            raise ValueError(f"config.model.head.intermediate_activation={head_config.intermediate_activation!r}: "
                             f"expected one of {sorted(ACTIVATIONS)}")
        head = Intermediate(head_config.intermediate, head_config.intermediate_activation,
                            make_head(config, head_config.intermediate, num_labels))
    else:
        head = make_head(config, config.model.encoder.width, num_labels)
    if config.aux.clusters > 0:
        head = _with_aux_objective(config, head, num_labels, data, workdir)
    return XMCModel(encoder=encoder, head=head)


def _with_aux_objective(config: ml_collections.ConfigDict, head: nn.Module, num_labels: int, data: Dataset | None,
                        workdir: str | None) -> AuxObjective:
    aux = config.aux
    if data is None:
        raise ValueError("config.aux.clusters > 0: the auxiliary objective clusters labels by their training "
                         "points; build_model needs data=")
    if not 0.0 <= aux.alpha <= 1.0:
        raise ValueError(f"config.aux.alpha={aux.alpha}: must be in [0, 1]")
    if not 0.0 < aux.cutoff <= 1.0:  # at 0 the decay would never run and alpha would stay at its start value
        raise ValueError(f"config.aux.cutoff={aux.cutoff}: must be in (0, 1] (config.aux.clusters=0 turns the "
                         f"auxiliary objective off)")
    clusters = cached_label_clusters(data.train, num_labels, aux.clusters, aux.projection, aux.kmeans_iterations,
                                     config.seed, workdir)
    return AuxObjective(head, aux.clusters, clusters, aux.alpha)
