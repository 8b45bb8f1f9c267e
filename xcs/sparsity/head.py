"""The fixed fan-in sparse head (Schultheis & Babbar 2023; Ullah et al. 2024).

Parameters: `weight` [L, k] (U(±1/√k)) and `bias` [L], trained by the optimizer like any other.
The int32 `indices` [L, k] (k distinct inputs per row, sampled without replacement) live in the
non-trainable collection `sparsity`, which the train state keeps as model_state and which only
prune-and-regrow (xcs.sparsity.rewire, a periodic action) changes.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import UserError
from xcs.losses import FROM_LOG_PARTITION, LossFn
from xcs.nn.topk import chunked_topk
from xcs.sparsity.fanin import (
    chunk_scorer,
    fanin_logsumexp,
    fanin_matmul,
    fanin_matmul_gather,
    kernel_chunk,
    pick_kernel,
    sample_indices,
)

COLLECTION = "sparsity"  # the non-trainable collection that holds `indices`
# For RigL's regrowth scores: a zero `logits` perturbation whose gradient is dloss/dlogits, and
# the head's input `h` sown into `intermediates` (neither exists during training steps).
PERTURBATIONS = "perturbations"
INTERMEDIATES = "intermediates"


class FanInHead(nn.Module):
    """logits[b, l] = sum_j h[b, indices[l, j]] weight[l, j] + bias[l], computed in label chunks."""

    in_features: int
    num_labels: int
    fan_in: int
    use_bias: bool
    kernel: str  # block | gather (xcs.sparsity.fanin.pick_kernel)
    block_mb: float  # MiB of the per-chunk temporary, which sets the label rows per chunk
    save_logits_mb: float  # the softmax path keeps its [B, L] logits for the backward pass up to this size

    def setup(self):
        bound = 1.0 / float(self.fan_in) ** 0.5
        self.weight = self.param("weight", _uniform(bound), (self.num_labels, self.fan_in))
        self.bias = self.param("bias", nn.initializers.zeros, (self.num_labels,)) if self.use_bias else None
        self.indices = self.variable(
            COLLECTION, "indices",
            lambda: sample_indices(self.make_rng("params"), self.num_labels, self.in_features, self.fan_in,
                                   self.chunk))

    @property
    def chunk(self) -> int:
        """Label rows per chunk of the block kernel (also used by index sampling and rewiring)."""
        return kernel_chunk("block", self.num_labels, self.in_features, self.fan_in, 1, self.block_mb)

    def _chunk(self, batch: int) -> int:
        return kernel_chunk(self.kernel, self.num_labels, self.in_features, self.fan_in, batch, self.block_mb)

    def logits(self, h: jax.Array) -> jax.Array:
        matmul = fanin_matmul if self.kernel == "block" else fanin_matmul_gather
        return matmul(h, self.weight, self._bias(), self.indices.value, self._chunk(h.shape[0]))

    def _bias(self) -> jax.Array:
        """The kernels add the bias per chunk (one pass less over [B, L]); no bias is a zero one."""
        return jnp.zeros((self.num_labels,), self.weight.dtype) if self.bias is None else self.bias

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        if not self.is_initializing():
            self.sow(INTERMEDIATES, "inputs", h)
        if self.has_variable(PERTURBATIONS, "logits"):  # RigL's scores need dloss/dlogits: the [B, L] path
            return loss_fn(self.logits(h) + self.get_variable(PERTURBATIONS, "logits"), label_idx, label_mask)
        if loss_fn in FROM_LOG_PARTITION and self.kernel == "block":  # softmax, softmax_pal
            # The chunked path: log partition and positives' logits, never the [B, L] gradient of
            # the logits (fanin_logsumexp); the logits themselves are kept for the backward pass
            # while they fit in save_logits_mb (one matmul per chunk less), else recomputed.
            save = h.shape[0] * self.num_labels * 4 <= self.save_logits_mb * 2**20
            return FROM_LOG_PARTITION[loss_fn](
                fanin_logsumexp(h, self.weight, self._bias(), self.indices.value, self._chunk(h.shape[0]), save),
                self.label_logits(h, label_idx), label_mask)
        return loss_fn(self.logits(h), label_idx, label_mask)

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        score_chunk = chunk_scorer(h, self.weight, self.indices.value, self.bias, self.kernel)
        return chunked_topk(score_chunk, h.shape[0], self.num_labels, self._chunk(h.shape[0]), k)

    def topk_log_partition(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        score_chunk = chunk_scorer(h, self.weight, self.indices.value, self.bias, self.kernel)
        return chunked_topk(score_chunk, h.shape[0], self.num_labels, self._chunk(h.shape[0]), k,
                            with_logsumexp=True)

    def chunk_logits(self, h: jax.Array, start: jax.Array, size: int) -> jax.Array:
        return chunk_scorer(h, self.weight, self.indices.value, self.bias, self.kernel)(start, size)

    def label_logits(self, h: jax.Array, ids: jax.Array) -> jax.Array:
        """Logits of the labels `ids` [B, M] only: a [B, M, fan_in] gather, never [B, L, fan_in]."""
        batch, m = ids.shape
        slots = self.indices.value[ids].reshape(batch, m * self.fan_in)
        inputs = jnp.take_along_axis(h, slots, axis=1).reshape(batch, m, self.fan_in)
        out = jnp.einsum("bmk,bmk->bm", inputs, self.weight[ids])
        return out if self.bias is None else out + self.bias[ids]


def _uniform(bound: float):
    """U(-bound, bound) initializer (flax's `uniform` is U(0, scale))."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def make_sparse_head(config: ml_collections.ConfigDict, in_features: int, num_labels: int) -> FanInHead:
    """The head of config.sparsity (its keys checked by xcs.sparsity.method.check)."""
    s = config.sparsity
    if not 1 <= s.fan_in <= in_features:
        raise UserError(f"config.sparsity.fan_in={s.fan_in}: must be between 1 and the head's input width "
                         f"{in_features}")
    return FanInHead(in_features, num_labels, s.fan_in, config.model.head.use_bias,
                     pick_kernel(s.kernel, in_features, s.fan_in), s.block_mb, s.save_logits_mb)
