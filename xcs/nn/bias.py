"""Bias addition for wide layers, whose gradient is a matrix-vector product instead of a column sum.

The gradient of `x + bias` over a batch is the column sum of dL/dx. XLA-CPU lowers a column sum of
a wide [B, L] array to a strided reduction that is 57-83x slower than the same sum written as
ones[B] @ g (`python -m experiments.benchmarks.bias_grad`: 1345 against 24 ms at B = 256,
L = 670k; 51 against 0.9 ms at L = 32768; 1.5x at [4096, 1536]). For the dense head at 670k labels
it was about a third of the train step (the heads benchmark: 4398 ms before, 2484-3091 ms after).
`add_bias` is `x + bias` with that gradient; `WideDense` is flax's nn.Dense (same parameter
names and initialisers, so checkpoints are interchangeable) built on it.

Not for use inside shard_map with a replicated bias: the custom gradient does not sum over the
devices the bias is replicated on (xcs.dense.sharded keeps the plain addition).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def column_sum(g: jax.Array) -> jax.Array:
    """g [..., n] summed over every axis but the last, as a matrix-vector product."""
    rows = g.reshape(-1, g.shape[-1])
    return jnp.ones((rows.shape[0],), rows.dtype) @ rows


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
    """x [..., n] + bias [n]; the bias gradient is column_sum(g)."""
    return x + bias


def _add_bias_fwd(x, bias):
    return x + bias, None


def _add_bias_bwd(_, g):
    return g, column_sum(g)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


class WideDense(nn.Module):
    """nn.Dense(features) whose bias gradient is column_sum: for layers thousands of units wide."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return add_bias(x @ kernel, bias)
