"""xcs.nn.matmul: the bfloat16 head product and its hand-written gradient against numpy on rounded inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from xcs.nn.matmul import head_matmul


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """x rounded to bfloat16 (to nearest, as XLA's convert), back in float64."""
    return np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


@pytest.mark.parametrize("batch,width,labels", [(7, 16, 300), (32, 48, 1000)])
def test_bf16_product_and_gradients_match_numpy(batch, width, labels):
    rng = np.random.default_rng(batch)
    h = rng.normal(size=(batch, width)).astype(np.float32)
    kernel = (rng.normal(size=(width, labels)) / np.sqrt(width)).astype(np.float32)
    g = rng.normal(size=(batch, labels)).astype(np.float32)  # the upstream gradient dL/dlogits

    out, vjp = jax.vjp(lambda h, k: head_matmul(h, k, "bfloat16"), jnp.asarray(h), jnp.asarray(kernel))
    dh, dkernel = vjp(jnp.asarray(g))

    np.testing.assert_allclose(np.asarray(out), _round_bf16(h) @ _round_bf16(kernel), rtol=1e-4, atol=1e-4)
    # dh: upstream gradient and kernel rounded; dW: the float32 product of h and g (rounding passed straight through)
    np.testing.assert_allclose(np.asarray(dh), _round_bf16(g) @ _round_bf16(kernel).T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(dkernel), h.astype(np.float64).T @ g.astype(np.float64),
                               rtol=1e-4, atol=1e-4)
    assert out.dtype == dh.dtype == dkernel.dtype == jnp.float32
    # bfloat16 rounding is visible: the product is not the float32 one (so the test would notice a float32 path)
    assert np.abs(np.asarray(out) - h.astype(np.float64) @ kernel).max() > 1e-4


def test_float32_product_is_exact_and_unknown_dtype_refused():
    rng = np.random.default_rng(0)
    h, kernel = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(8, 20)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(head_matmul(jnp.asarray(h), jnp.asarray(kernel))), h @ kernel, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="float16"):
        head_matmul(jnp.asarray(h), jnp.asarray(kernel), "float16")
