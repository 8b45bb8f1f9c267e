"""The head's product h [B, d] @ W [d, L] with its gradient: float32, bfloat16 as JAX derives it, bf16_matmul.

  python -m experiments.benchmarks.head_matmul --shapes 256x256x20472,1024x256x20472,1024x128x20472 --out F

Why xcs.nn.matmul writes the backward pass of the bfloat16 product by hand (model.head.matmul_dtype).
Rows: batch, width, labels, then the ms of one forward and backward of sum(logsumexp(h @ W)) in each form
(f32_ms, bf16_autodiff_ms, bf16_ms) and the forward alone (f32_forward_ms, bf16_forward_ms); speedup =
f32_ms / bf16_ms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import median_ms, shapes_main
from xcs.nn.matmul import head_matmul


def _timed(fn, *args, repeats: int) -> float:
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))
    return median_ms(lambda: jax.block_until_ready(fn(*args)), repeats)


def measure(batch: int, width: int, labels: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(batch, width)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(width, labels)) / np.sqrt(width), jnp.float32)

    def autodiff_bf16(h, kernel):
        return jnp.dot(h.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), preferred_element_type=jnp.float32)

    forms = {"f32": lambda h, k: head_matmul(h, k, "float32"), "bf16_autodiff": autodiff_bf16,
             "bf16": lambda h, k: head_matmul(h, k, "bfloat16")}
    row = dict(batch=batch, width=width, labels=labels)
    for name, product in forms.items():
        grad = jax.grad(lambda h, k, product=product: jax.nn.logsumexp(product(h, k), axis=-1).sum(), argnums=(0, 1))
        row[f"{name}_ms"] = _timed(grad, h, kernel, repeats=repeats)
    row["f32_forward_ms"] = _timed(forms["f32"], h, kernel, repeats=repeats)
    row["bf16_forward_ms"] = _timed(forms["bf16"], h, kernel, repeats=repeats)
    row["speedup"] = row["f32_ms"] / row["bf16_ms"]
    return row


def main() -> None:
    shapes_main(__doc__, measure, "256x256x20472,1024x256x20472,1024x128x20472", "32x16x500", "BATCHxWIDTHxLABELS")


if __name__ == "__main__":
    main()
