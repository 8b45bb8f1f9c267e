"""The head's matrix product h [B, d] @ W [d, L] with bfloat16 inputs and float32 accumulation.

On CPUs with AVX512-BF16 (and on GPUs) a bfloat16 product runs at several times the float32 rate, but
XLA-CPU takes its fast bfloat16 kernel only for some operand layouts; for the others it converts the
operands to float32 first and is slower than plain float32. The gradient JAX derives for
`h.astype(bf16) @ W.astype(bf16)` contracts the batch axis of both operands for dW, one of the slow
layouts, so the whole product is no faster than float32. `bf16_matmul` fixes the backward pass by hand:
dh = g·Wᵀ contracts the label axis of both (a fast layout), and dW = hᵀ·g, whose bfloat16 form is slow,
runs in float32 (`python -m experiments.benchmarks.head_matmul` measures each form).

The weights, their gradients and the logits stay float32: only the inputs of the products are rounded
(8 bits of mantissa), as in the usual mixed-precision training.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MATMUL_DTYPES = ("float32", "bfloat16")

_CONTRACT_LAST = (((1,), (1,)), ((), ()))  # a [m, k] · b [n, k] -> [m, n]
_CONTRACT_FIRST = (((0,), (0,)), ((), ()))  # a [k, m] · b [k, n] -> [m, n]


@jax.custom_vjp
def bf16_matmul(h: jax.Array, kernel: jax.Array) -> jax.Array:
    """h [B, d] @ kernel [d, L] -> float32 [B, L], the inputs rounded to bfloat16."""
    return jnp.dot(h.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), preferred_element_type=jnp.float32)


def _forward(h: jax.Array, kernel: jax.Array):
    kernel_bf16 = kernel.astype(jnp.bfloat16)
    out = jnp.dot(h.astype(jnp.bfloat16), kernel_bf16, preferred_element_type=jnp.float32)
    return out, (h, kernel_bf16)


def _backward(residuals, g: jax.Array):
    h, kernel_bf16 = residuals
    dh = jax.lax.dot_general(g.astype(jnp.bfloat16), kernel_bf16, _CONTRACT_LAST,
                             preferred_element_type=jnp.float32)
    dkernel = jax.lax.dot_general(h.astype(jnp.float32), g.astype(jnp.float32), _CONTRACT_FIRST,
                                  preferred_element_type=jnp.float32)
    return dh.astype(h.dtype), dkernel


bf16_matmul.defvjp(_forward, _backward)


def head_matmul(h: jax.Array, kernel: jax.Array, dtype: str = "float32") -> jax.Array:
    """h @ kernel with the inputs in `dtype` (float32 | bfloat16), accumulated in float32."""
    if dtype == "float32":
        return h @ kernel
    if dtype == "bfloat16":
        return bf16_matmul(h, kernel)
    raise ValueError(f"matmul dtype {dtype!r}: expected one of {', '.join(MATMUL_DTYPES)}")
