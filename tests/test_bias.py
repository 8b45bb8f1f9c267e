"""add_bias / WideDense: the matrix-vector form of the bias gradient equals the plain one."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from xcs.nn.bias import WideDense, add_bias, column_sum


def test_add_bias_value_and_gradients_equal_plain_addition():
    kx, kb, kp = jax.random.split(jax.random.PRNGKey(0), 3)
    x, bias = jax.random.normal(kx, (3, 5, 7)), jax.random.normal(kb, (7,))
    probe = jax.random.normal(kp, (3, 5, 7))
    np.testing.assert_allclose(add_bias(x, bias), x + bias)
    got = jax.jit(jax.grad(lambda x, b: (add_bias(x, b) * probe).sum(), (0, 1)))(x, bias)
    want = jax.grad(lambda x, b: ((x + b) * probe).sum(), (0, 1))(x, bias)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(column_sum(probe), probe.sum((0, 1)), rtol=1e-5, atol=1e-5)


def test_wide_dense_is_nn_dense_with_the_same_parameters():
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 6))
    params = WideDense(9).init(jax.random.PRNGKey(2), x)
    reference = nn.Dense(9)
    assert jax.tree.structure(params) == jax.tree.structure(reference.init(jax.random.PRNGKey(2), x))
    params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.PRNGKey(3), p.shape), params)
    np.testing.assert_allclose(WideDense(9).apply(params, x), reference.apply(params, x), rtol=1e-5, atol=1e-5)
    got = jax.grad(lambda p: jnp.sin(WideDense(9).apply(p, x)).sum())(params)
    want = jax.grad(lambda p: jnp.sin(reference.apply(p, x)).sum())(params)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5), got, want)
