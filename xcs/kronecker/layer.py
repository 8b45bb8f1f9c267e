"""Two-layer shifted-ReLU networks on Kronecker-structured inputs x = f_0 ⊗ f_1 ⊗ ... (Song & Ye 2023).

The network: f(W, x) = m^{-1/2} Σ_r a_r σ_b(w_rᵀx), σ_b(z) = max(z − b, 0), a_r ∈ {±1} fixed, only
W [m, d] trained, squared loss ½·mean (f − y)². Three representations of the same network:

  dense       W as [m, d] on the formed x [B, d]: the baseline (benchmarks and tests only; it is the
              one place where x = u ⊗ v is formed, on purpose).
  primal      W as [m, d_0, d_1, ...]; w_rᵀx = contractions of W_r with each factor in turn, never
              forming x or any [B, d] tensor, but still O(m·d) per point.
  structured  SGD only adds multiples of training points to w_r, so w_r(t) = w_r(0) + Σ_j C[r, j] x_j
              and w_r(t)ᵀx_i = w_r(0)ᵀx_i + Σ_j C[r, j] ⟨x_j, x_i⟩, ⟨x_j, x_i⟩ = Π_k ⟨f_jk, f_ik⟩.
              The state is the pre-activations P [m, n] of all n training points (initial projections
              computed once) and the coefficients C [m, n]. A step on batch S computes the Gram rows
              G [B, n] from the factors (O(B·n·Σ d_k); or reads them from a precomputed [n, n] Gram),
              the coefficient change ΔC [m, B] (non-zero only for active neurons) and P += ΔC·G: no
              d-dimensional vector is touched after the initialisation. Cost per step: O(B·n·Σ d_k)
              for G plus O(m·B·n) for the dense product ΔC·G (independent of d; a sparse product over
              the active (neuron, point) pairs would cut it to O(nnz(ΔC)·n); not implemented here).
              New points are predicted from w_r(0)ᵀx (factor contractions) plus C·Gram(train, new).

The primal and structured representations give the same model after the same steps (tests/test_kronecker.py).
`KroneckerEncoder` is the primal layer as an xcs encoder (config.model.encoder.name='kronecker'):
h = σ_b(W x) [B, m], trained with any head, optimizer and train mode (sync or async) by launch.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import UserError
from xcs.data.kronecker import batch_factors


def project(w: jax.Array, factors: Sequence[jax.Array]) -> jax.Array:
    """w_rᵀx_i for W [m, d_0, ..., d_{K-1}] and factors [B, d_k]: [B, m], by one contraction per factor.

    The last factor is contracted first ([B, m, d_0..d_{K-2}]), then the others from the back, so
    neither x nor any [B, d] tensor exists. Explicit steps, because a single einsum may pick the
    path that forms the outer product.
    """
    h = jnp.einsum("m...j,bj->bm...", w, factors[-1])
    for f in reversed(factors[:-1]):
        h = jnp.einsum("bm...j,bj->bm...", h, f)
    return h


def formed_x(factors: Sequence[jax.Array]) -> jax.Array:
    """x = f_0 ⊗ f_1 ⊗ ... as [B, d]: the dense baseline's input and the tests' naive reference only."""
    x = factors[0]
    for f in factors[1:]:
        x = (x[:, :, None] * f[:, None, :]).reshape(x.shape[0], -1)
    return x


def gram_rows(rows_factors: Sequence[jax.Array], all_factors: Sequence[jax.Array]) -> jax.Array:
    """⟨x_i, x_j⟩ [B, n] for the batch points i and all points j, as Π_k F_k[i] F_kᵀ: O(B·n·Σ d_k)."""
    g = rows_factors[0] @ all_factors[0].T
    for fr, fa in zip(rows_factors[1:], all_factors[1:]):
        g = g * (fr @ fa.T)
    return g


def shifted_relu(z: jax.Array, shift: float | jax.Array) -> jax.Array:
    return jax.nn.relu(z - shift)


def output(pre: jax.Array, a: jax.Array, shift: float | jax.Array) -> jax.Array:
    """f = m^{-1/2} Σ_r a_r σ_b(pre_r) for pre-activations [B, m]: [B]."""
    return shifted_relu(pre, shift) @ a / jnp.sqrt(a.shape[0])


def init_network(key: jax.Array, dims: Sequence[int], m: int) -> tuple[jax.Array, jax.Array]:
    """W(0) [m, *dims] with entries N(0, 1) (so w_rᵀx ~ N(0, 1) for unit x) and a ∈ {±1}^m."""
    w_key, a_key = jax.random.split(key)
    w = jax.random.normal(w_key, (m, *dims), jnp.float32)
    a = jnp.where(jax.random.bernoulli(a_key, 0.5, (m,)), 1.0, -1.0).astype(jnp.float32)
    return w, a


def squared_loss(out: jax.Array, y: jax.Array) -> jax.Array:
    return 0.5 * jnp.mean((out - y) ** 2)


# ----------------------------------------------------------------------------- primal and dense


def primal_step(w: jax.Array, a: jax.Array, shift: float, factors: Sequence[jax.Array], y: jax.Array,
                lr: float | jax.Array, read: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """One SGD step on W [m, *dims] for a batch of factors and targets y [B]: (W, loss).

    `read` (optional, W's shape): the parameters the gradient is computed at, e.g. a stale copy
    (asynchronous SGD); the step is applied to `w`. The loss is the one at `read`.
    """
    loss, grad = jax.value_and_grad(lambda w: squared_loss(output(project(w, factors), a, shift), y))(
        w if read is None else read)
    return w - lr * grad, loss


def dense_step(w: jax.Array, a: jax.Array, shift: float, x: jax.Array, y: jax.Array,
               lr: float | jax.Array, read: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """One SGD step on W [m, d] for formed inputs x [B, d]: (W, loss); `read` as in primal_step."""
    loss, grad = jax.value_and_grad(lambda w: squared_loss(output(x @ w.T, a, shift), y))(w if read is None else read)
    return w - lr * grad, loss


# ----------------------------------------------------------------------------- structured


@flax.struct.dataclass
class StructuredState:
    pre: jax.Array  # [m, n] w_r(t)ᵀx_j of every training point j
    coef: jax.Array  # [m, n] C: w_r(t) = w_r(0) + Σ_j C[r, j] x_j
    step: jax.Array  # int32 scalar


def init_structured(w0: jax.Array, train_factors: Sequence[jax.Array], chunk: int = 1024) -> StructuredState:
    """The one-off initial projections P = W(0)·X [m, n], by factor contractions in chunks of points."""
    n = train_factors[0].shape[0]
    parts = [project(w0, [f[s:s + chunk] for f in train_factors]).T for s in range(0, n, chunk)]
    pre = jnp.concatenate(parts, axis=1) if parts else jnp.zeros((w0.shape[0], 0), w0.dtype)
    return StructuredState(pre=pre, coef=jnp.zeros_like(pre), step=jnp.zeros((), jnp.int32))


def structured_from_projections(pre: jax.Array) -> StructuredState:
    """A structured state from given initial projections [m, n] (e.g. computed elsewhere, or for timing)."""
    return StructuredState(pre=pre, coef=jnp.zeros_like(pre), step=jnp.zeros((), jnp.int32))


def structured_step(state: StructuredState, rows: jax.Array, y: jax.Array, train_factors: Sequence[jax.Array],
                    a: jax.Array, shift: float | jax.Array, lr: float | jax.Array,
                    gram: jax.Array | None = None, read: jax.Array | None = None,
                    ) -> tuple[StructuredState, dict[str, jax.Array]]:
    """One SGD step on the batch of training points `rows` [B] with targets y [B].

    Equal to primal_step on the same batch: ∇_{w_r} = (1/B) Σ_i (f_i − y_i)(a_r/√m) 1[p_ri > b] x_i,
    so w_r moves by Σ_i ΔC[r, i] x_i and every pre-activation p_rj by Σ_i ΔC[r, i] ⟨x_i, x_j⟩.
    `gram` ([n, n], optional) replaces the factor products by a lookup (O(B·n) instead of O(B·n·Σ d_k)).
    `read` (optional, [m, n]): the pre-activations the gradient is computed at, e.g. a stale copy
    (asynchronous SGD; equal to primal_step with a stale `read` W); the step is applied to `state`.
    Metrics: loss (before the step, as for the primal step) and active_frac (share of (neuron, point)
    pairs of the batch with p > b: the only non-zeros of ΔC).
    """
    pre_b = (state.pre if read is None else read)[:, rows]  # [m, B]
    m, batch = pre_b.shape
    active = pre_b > shift
    out = shifted_relu(pre_b, shift).T @ a / jnp.sqrt(m)
    residual = out - y
    dcoef = jnp.where(active, (-lr / batch) * (a / jnp.sqrt(m))[:, None] * residual[None, :], 0.0)
    g = gram[rows] if gram is not None else gram_rows([f[rows] for f in train_factors], train_factors)
    new = StructuredState(pre=state.pre + dcoef @ g, coef=state.coef.at[:, rows].add(dcoef), step=state.step + 1)
    return new, {"loss": 0.5 * jnp.mean(residual**2), "active_frac": jnp.mean(active.astype(jnp.float32))}


def structured_predict(state: StructuredState, w0: jax.Array, a: jax.Array, shift: float | jax.Array,
                       train_factors: Sequence[jax.Array], factors: Sequence[jax.Array]) -> jax.Array:
    """f(W(t), x) [B] for new points: w_r(0)ᵀx by contractions plus C·⟨x_j, x⟩ from the factors."""
    pre = project(w0, factors) + gram_rows(factors, train_factors) @ state.coef.T
    return output(pre, a, shift)


def structured_weights(state: StructuredState, w0: jax.Array, train_factors: Sequence[jax.Array]) -> jax.Array:
    """W(t) = W(0) + C·X as [m, *dims] (tests only: costs O(m·n·d))."""
    return w0 + jnp.einsum("mn,nd->md", state.coef, formed_x(train_factors)).reshape(w0.shape)


# ----------------------------------------------------------------------------- xcs encoder


class KroneckerEncoder(nn.Module):
    """The primal layer as an xcs encoder: h = σ_b(w_rᵀx) [B, m] from the batch's factor0, factor1, ..."""

    width: int  # m: neurons
    shift: float  # b of the shifted ReLU
    init_std: float  # std of the entries of W(0)

    @nn.compact
    def __call__(self, batch: dict[str, jax.Array], train: bool) -> jax.Array:
        factors = batch_factors(batch)
        dims = tuple(f.shape[1] for f in factors)
        w = self.param("kernel", nn.initializers.normal(self.init_std), (self.width, *dims), jnp.float32)
        return shifted_relu(project(w, factors), self.shift)


def make_kronecker_encoder(config: ml_collections.ConfigDict, num_features: int) -> KroneckerEncoder:
    enc = config.model.encoder
    if enc.gated.enabled:
        raise UserError("config.model.encoder.gated.enabled: the kronecker encoder has no gated layer")
    return KroneckerEncoder(width=enc.width, shift=config.kronecker.shift, init_std=config.kronecker.init_std)
