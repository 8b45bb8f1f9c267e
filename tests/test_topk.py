"""Chunked top-k over labels equals lax.top_k over the full score matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xcs.nn.topk import chunked_topk


@pytest.mark.parametrize("num_labels,chunk,k", [(100, 7, 5), (100, 100, 5), (64, 16, 10), (3, 2, 5), (50, 300, 4)])
def test_chunked_topk_matches_full(num_labels, chunk, k):
    rng = np.random.default_rng(num_labels + chunk)
    h = jnp.asarray(rng.normal(size=(6, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(8, num_labels)), jnp.float32)
    full = h @ w
    scores, ids = jax.jit(lambda h, w: chunked_topk(
        lambda s, n: h @ jax.lax.dynamic_slice_in_dim(w, s, n, axis=1), 6, num_labels, chunk, k))(h, w)
    k_eff = min(k, num_labels)
    ref_s, ref_i = jax.lax.top_k(full, k_eff)
    np.testing.assert_allclose(scores[:, :k_eff], ref_s, rtol=1e-6)
    np.testing.assert_array_equal(ids[:, :k_eff], ref_i)
    assert (ids[:, k_eff:] == -1).all()


@pytest.mark.parametrize("num_labels,chunk", [(100, 7), (64, 64), (3, 2)])
def test_chunked_logsumexp_matches_full(num_labels, chunk):
    rng = np.random.default_rng(num_labels)
    h = jnp.asarray(rng.normal(size=(5, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(8, num_labels)), jnp.float32)
    _, _, lse = chunked_topk(lambda s, n: h @ jax.lax.dynamic_slice_in_dim(w, s, n, axis=1), 5, num_labels, chunk,
                             4, with_logsumexp=True)
    np.testing.assert_allclose(lse, jax.nn.logsumexp(h @ w, axis=1), rtol=1e-6)
