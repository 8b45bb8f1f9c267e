"""Losses from label indices equal the same losses on a dense 0/1 target (built here, in the test)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xcs.losses import LOSSES


def dense_reference(name, logits, targets):
    if name == "softmax":
        logp = jax.nn.log_softmax(logits, axis=-1)
        n = targets.sum(-1)
        return jnp.where(n > 0, -(targets * logp).sum(-1) / jnp.maximum(n, 1), 0.0)
    if name == "bce":
        return (jax.nn.softplus(logits) - targets * logits).sum(-1)
    if name == "squared_hinge":
        sign = 2.0 * targets - 1.0
        return jnp.square(jax.nn.relu(1.0 - sign * logits)).sum(-1)
    # The spherical family, from the dense output o and target y (not from q, s and the positives).
    n = targets.sum(-1)

    def mean_over_positives(values):
        return jnp.where(n > 0, (targets * values).sum(-1) / jnp.maximum(n, 1), 0.0)

    if name == "squared_error":
        return jnp.square(logits - targets).sum(-1)
    if name == "spherical_softmax":
        f = jnp.square(logits) + 0.01
        return -mean_over_positives(jnp.log(f / f.sum(-1, keepdims=True)))
    if name == "taylor_softmax":
        f = 1.0 + logits + 0.5 * jnp.square(logits)
        return -mean_over_positives(jnp.log(f / f.sum(-1, keepdims=True)))
    if name == "zloss":
        z = (logits - logits.mean(-1, keepdims=True)) / jnp.sqrt(logits.var(-1, keepdims=True) + 1e-12)
        return mean_over_positives(jax.nn.softplus(-z))
    raise AssertionError(name)


def random_problem(seed, batch=7, labels=31, width=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, labels)).astype(np.float32) * 2
    idx = np.zeros((batch, width), np.int32)
    mask = np.zeros((batch, width), bool)
    targets = np.zeros((batch, labels), np.float32)
    for b in range(batch):
        n = rng.integers(0, width + 1)  # includes points without labels
        ids = rng.choice(labels, n, replace=False)
        idx[b, :n], mask[b, :n], targets[b, ids] = ids, True, 1.0
        idx[b, n:] = rng.integers(0, labels, width - n)  # padding ids point anywhere
    return jnp.asarray(logits), jnp.asarray(idx), jnp.asarray(mask), jnp.asarray(targets)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_and_gradient_match_dense_target(name, seed):
    logits, idx, mask, targets = random_problem(seed)
    fast = LOSSES[name]
    np.testing.assert_allclose(fast(logits, idx, mask), dense_reference(name, logits, targets), rtol=1e-5, atol=1e-5)
    g_fast = jax.grad(lambda z: fast(z, idx, mask).sum())(logits)
    g_ref = jax.grad(lambda z: dense_reference(name, z, targets).sum())(logits)
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-5, atol=1e-5)
