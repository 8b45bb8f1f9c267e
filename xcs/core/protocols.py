"""What a method package declares, and the two hooks the training loop calls on its behalf.

Each method package (xcs.dense, xcs.sparsity, xcs.lsh, xcs.factored, xcs.encoders, xcs.kronecker,
xcs.minilm; xcs.gated and xcs.auxiliary are parts the others combine with) exports ONE declaration,
a `HeadMethod` or an `EncoderMethod`, holding everything the rest of xcs needs to know of it.
xcs.registry lists the declarations; the loop, the validation and prediction read only those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import optax

Config = ml_collections.ConfigDict


@dataclasses.dataclass(frozen=True)
class PeriodicAction:
    """A pure function of the train state that the loop runs after every `every`-th step."""

    name: str
    every: int  # run after every `every`-th step
    until: int  # and only while step <= until
    run: Callable[[Any, dict, Any], Any]  # (TrainState, batch, key) -> TrainState, jitted by its owner
    at_steps: frozenset[int] = frozenset()  # if given: due exactly at these steps (e.g. growing intervals)

    def due(self, step: int) -> bool:
        if self.at_steps:
            return step in self.at_steps
        return self.every > 0 and step % self.every == 0 and step <= self.until


# (config, model, total_steps) -> that method's actions
ActionFactory = Callable[[Config, nn.Module, int], list[PeriodicAction]]

# (model_state, h [B, d], batch, lr, key) -> (model_state, per-point loss [B], ∂ mean loss / ∂h [B, d])
UpdateFn = Callable[[Any, jax.Array, dict, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class HeadUpdate:
    """A head that owns its update (not trained by optax through the loss gradient).

    The head keeps its weights in non-trainable Flax collections (TrainState.model_state). The
    train step computes h with a VJP of the encoder, calls `update`, and pulls the returned
    ∂loss/∂h back through the encoder; the head's optax parameters are then unused.
    """

    learning_rate: optax.Schedule  # step -> the head's learning rate (logged as lr_head)
    update: UpdateFn  # pure, traced inside the jitted train step


def no_check(config: Config) -> None:
    """The check of a method without keys of its own."""


@dataclasses.dataclass(frozen=True)
class HeadMethod:
    """One output layer: from the encoder output h [B, d] to a loss and a top-k over the labels.

    Its Flax module implements `loss(h, label_idx, label_mask, loss_fn)` and `topk(h, k)`; one
    whose softmax is exact also implements `topk_log_partition`, `label_logits` and `chunk_logits(h, start,
    size)` (the logits of a contiguous chunk of labels) (`knn=True`: the kNN and label-name mixes).
    """

    name: str
    build: Callable[[Config, int, int], nn.Module]  # (config, in_features, num_labels) -> module
    summary: str  # one line for docs and error messages
    losses: tuple[str, ...] | None = None  # config.loss.name values it trains; None = every dense-form loss
    check: Callable[[Config], None] = no_check  # its own keys' ranges; raises xcs.core.errors.ConfigError
    update: Callable[[Config, nn.Module, int], HeadUpdate] | None = None  # its own update rule, if not optax
    actions: ActionFactory | None = None  # its periodic actions (prune-and-regrow, rehashing, ...)
    test_metrics: Callable[..., dict[str, float]] | None = None  # (config, model, variables, batcher) -> extra
    intermediate: bool = True  # config.model.head.intermediate > 0 may put a dense layer before it
    aux: bool = True  # config.aux.clusters > 0 may add the auxiliary objective beside it
    knn: bool = False  # config.eval.knn may mix its softmax with neighbour votes (needs exact probabilities)
    mesh: bool = False  # runs on a label-sharded device mesh (config.mesh.shape != (1, 1))
    async_sgd: bool = True  # config.train.mode=async (needs a head trained by optax)
    bfloat16: bool = False  # config.model.head.matmul_dtype=bfloat16 rounds the inputs of its training product


@dataclasses.dataclass(frozen=True)
class EncoderMethod:
    """One encoder: from a batch to embeddings h [B, d]."""

    name: str
    build: Callable[[Config, int], nn.Module]  # (config, num_features) -> module
    summary: str
    sources: tuple[str, ...] | None = None  # config.data.source values it reads; None = all but those claimed
    check: Callable[[Config], None] = no_check
    actions: ActionFactory | None = None
    mesh: bool = True
    async_sgd: bool = True
    # config.train.sparse_embedding: its params' "embedding" table is read only at batch["feat_idx"], and the
    # module takes those rows gathered as batch["feat_rows"] [B, F, d] (xcs.train.sparse_table)
    sparse_embedding: bool = False
