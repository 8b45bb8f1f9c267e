"""The factored output layer: exact SGD on a D×d output matrix in O(d² + K·d) per example.

Vincent, de Brébisson & Bouthillier, "Efficient Exact Gradient Update for training Deep Networks
with Very Large Sparse Targets" (NeurIPS 2015), with the spherical-family extension of de
Brébisson & Vincent (2016) as in the authors' code (pascal20100/factored_output_layer).

The output of a point with last hidden layer h ∈ R^d is o = W h ∈ R^D, with W kept as

    W = V·U + 1·ωᵀ        V [D, d], U [d, d], ω [d]

plus bookkeeping that is never recomputed from V: U⁻ᵀ, Q = WᵀW and w̄ = Wᵀ1 (the sum of W's
rows). For a loss of the spherical family (xcs.spherical_losses: a function of q = ‖o‖² = hᵀQh,
s = Σ_j o_j = w̄ᵀh and the outputs at the K positives, V[K]·(U h) + ωᵀh) the loss, ∇h and the
exact SGD update of W cost O(d² + K·d) per example; o itself is never formed.

Why the update is exact and cheap. With g = ∂L/∂o = α·o + β·1 + S (α = 2 ∂L/∂q, β = ∂L/∂s, S the
K-sparse ∂L/∂o_K), SGD with step η and weight decay λ (γ = 1 − ηλ) on a minibatch H [m, d] is

    W ← γW − η Σ_i g_i h_iᵀ = V·U·(γM) + 1·(γMω − η Hᵀβ)ᵀ − η S Hᵀ,   M = I − (η/γ) Hᵀ diag(α) H

so U ← γ U M (O(m d²)), ω ← γ M ω − η Hᵀβ, and the sparse part goes into the K·m touched rows of
V through U_new⁻¹: V[k] −= η a_ik · U_new⁻ᵀ h_i. U_new⁻ᵀ comes from U⁻ᵀ by the Woodbury identity
(I − H_c C H_cᵀ)⁻¹ = I + H_c (I − C G)⁻¹ C H_cᵀ with G = H Hᵀ [m, m] (m = 1: Sherman–Morrison);
Q and w̄ follow from Wᵀg_i = ∇_{h_i} L and the m×m Gram matrix of the g_i, all without D.
Squared error is the member with α = 2, β = 0, so ω stays 0 there.

All functions are pure and jit-compatible; `minibatch_update` and `sequential_update` return the
new state, the per-point loss and ∇h of each point's loss (gradients of Σ_i L_i: η multiplies the
summed loss). Donate the state to the jitted caller so that the K·m row update of V is in place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from xcs.nn.topk import chunked_topk
from xcs.spherical_losses import SphericalLoss


@flax.struct.dataclass
class FactoredState:
    V: jax.Array  # [D, d]
    U: jax.Array  # [d, d]
    Uinv_T: jax.Array  # [d, d]: U⁻ᵀ, kept up to date by rank-m updates, re-inverted by `stabilize`
    Q: jax.Array  # [d, d]: WᵀW
    omega: jax.Array  # [d]: W = V·U + 1·ωᵀ
    w_bar: jax.Array  # [d]: Wᵀ1, the sum of the rows of W


def weights(state: FactoredState) -> jax.Array:
    """The dense W = V·U + 1·ωᵀ [D, d]: O(D d²), for tests, re-factorisation and references only."""
    return state.V @ state.U + state.omega[None, :]


def factorize(V: jax.Array, U: jax.Array, omega: jax.Array) -> FactoredState:
    """The state of W = V·U + 1·ωᵀ with its bookkeeping computed from scratch (O(D d²))."""
    W = V @ U + omega[None, :]
    return FactoredState(V=V, U=U, Uinv_T=jnp.linalg.inv(U).T, Q=W.T @ W, omega=omega, w_bar=W.sum(0))


def init(key: jax.Array, num_labels: int, dim: int, scale: float, dtype: jnp.dtype = jnp.float32) -> FactoredState:
    """V ~ N(0, scale²/d), U = I, ω = 0 (so W = V; Q = VᵀV is computed once, O(D d²))."""
    V = (scale / math.sqrt(dim)) * jax.random.normal(key, (num_labels, dim), dtype)
    # Separate arrays for U and U⁻ᵀ: a donating caller may not receive one buffer twice.
    return FactoredState(V=V, U=jnp.eye(dim, dtype=dtype), Uinv_T=jnp.eye(dim, dtype=dtype), Q=V.T @ V,
                         omega=jnp.zeros(dim, dtype), w_bar=V.sum(0))


class _Forward(NamedTuple):
    """What one pass over a minibatch computes before the update (all O(m d² + m K d))."""

    loss: jax.Array  # [m]
    grad_h: jax.Array  # [m, d]: ∇_{h_i} L_i = Wᵀ g_i
    a: jax.Array  # [m, K]: ∂L_i/∂o at the positives (0 on padding)
    alpha: jax.Array  # [m]: 2 ∂L_i/∂q
    beta: jax.Array  # [m]: ∂L_i/∂s
    gram_g: jax.Array  # [m, m]: g_iᵀ g_j, the Gram matrix of the D-dim output gradients
    s: jax.Array  # [m]
    h_omega: jax.Array  # [m]: ωᵀ h_i


def _forward(state: FactoredState, H: jax.Array, label_idx: jax.Array, label_mask: jax.Array,
             loss_fn: SphericalLoss) -> _Forward:
    D = state.V.shape[0]
    V_pos = state.V[label_idx]  # [m, K, d]: the only rows of V read
    UH = H @ state.U.T  # rows U h_i
    h_omega = H @ state.omega
    o_pos = jnp.einsum("mkd,md->mk", V_pos, UH) + h_omega[:, None]
    QH = H @ state.Q  # Q is symmetric
    HQH = QH @ H.T  # [m, m]: o_iᵀ o_j
    q = jnp.diagonal(HQH)
    s = H @ state.w_bar

    def point_loss(o, q, s, mask):
        return loss_fn(o, mask, q, s, D)

    loss, (a, dq, ds) = jax.vmap(jax.value_and_grad(point_loss, argnums=(0, 1, 2)))(o_pos, q, s, label_mask)
    a = jnp.where(label_mask, a, 0.0)
    alpha, beta = 2.0 * dq, ds
    a_sum = a.sum(-1)
    # Z_i = Wᵀ(S_i + β_i 1) = Uᵀ V[K_i]ᵀ a_i + ω Σa_i + β_i w̄; then ∇h_i = α_i Q h_i + Z_i.
    Z = jnp.einsum("mk,mkd->md", a, V_pos) @ state.U + a_sum[:, None] * state.omega + beta[:, None] * state.w_bar
    grad_h = alpha[:, None] * QH + Z
    # g_iᵀg_j with g = α o + β 1 + S; o_iᵀS_j + s_i β_j = h_iᵀ Z_j.
    sparse_gram = _sparse_gram(label_idx, a)
    HZ = H @ Z.T
    gram_g = (alpha[:, None] * alpha[None, :] * HQH + alpha[:, None] * HZ + HZ.T * alpha[None, :]
              + D * beta[:, None] * beta[None, :] + beta[:, None] * a_sum[None, :] + a_sum[:, None] * beta[None, :]
              + sparse_gram)
    return _Forward(loss, grad_h, a, alpha, beta, gram_g, s, h_omega)


def _sparse_gram(label_idx: jax.Array, a: jax.Array) -> jax.Array:
    """S_iᵀS_j [m, m] for the K-sparse S_i = Σ_k a_ik e_{label_idx[i, k]}, repeated ids included.

    The m·K entries are grouped by label id (a sort), summed per (id, point) into [m·K, m], and
    that matrix's Gram is SᵀS: O(m² K) memory, where comparing ids pairwise would take (m K)².
    """
    m, k = label_idx.shape
    ids = label_idx.reshape(-1)
    order = jnp.argsort(ids)
    sorted_ids = ids[order]
    group_sorted = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(sorted_ids[1:] != sorted_ids[:-1])])
    group = jnp.zeros_like(group_sorted).at[order].set(group_sorted)  # the id's group of each entry
    point = jnp.repeat(jnp.arange(m), k)
    per_group = jnp.zeros((m * k, m), a.dtype).at[group, point].add(a.reshape(-1))
    return per_group.T @ per_group


def _solve_unpivoted(A: jax.Array, B: jax.Array) -> jax.Array:
    """A⁻¹B by Gauss–Jordan elimination without pivoting, O(m² (m + d)).

    Why not jnp.linalg.solve: on XLA-CPU its pivot-to-permutation loop made a 128×128 solve cost
    milliseconds, more than the whole factored step. No pivoting is needed here: A = I − G C with
    G = H Hᵀ and C = diag(c); for c ≥ 0 its leading minors are those of I − C½ G C½, positive
    whenever the step keeps M = I − Hᵀ C H positive definite (a step that does not flip U).
    """
    m = A.shape[0]

    def body(k, carry):
        A, B = carry
        pivot = A[k, k]
        row_a, row_b = A[k] / pivot, B[k] / pivot
        f = A[:, k].at[k].set(0.0)  # multipliers of row k in the other rows
        A = (A - f[:, None] * row_a[None, :]).at[k].set(row_a)
        B = (B - f[:, None] * row_b[None, :]).at[k].set(row_b)
        return A, B

    return jax.lax.fori_loop(0, m, body, (A, B))[1]


def _apply(state: FactoredState, fwd: _Forward, H: jax.Array, label_idx: jax.Array, eta: jax.Array,
           weight_decay: jax.Array) -> FactoredState:
    """W ← (1 − ηλ) W − η Σ_i g_i h_iᵀ on the factored state (see the module docstring)."""
    m, d = H.shape
    D = state.V.shape[0]
    gamma = 1.0 - eta * weight_decay
    c = (eta / gamma) * fwd.alpha  # M = I − Hᵀ diag(c) H
    inner = jnp.eye(m, dtype=H.dtype) - c[:, None] * (H @ H.T)  # I − C G
    T = H @ state.Uinv_T.T  # rows U⁻ᵀ h_i
    if m == 1:  # Sherman–Morrison: the inner matrix is the scalar 1 − c‖h‖²
        P = T / (gamma * inner[0, 0])
    else:  # Woodbury
        P = _solve_unpivoted(inner.T, T) / gamma
    # P's rows are U_new⁻ᵀ h_i: the direction in which each touched row of V moves.
    U = gamma * state.U - eta * (H @ state.U.T).T @ (fwd.alpha[:, None] * H)
    Uinv_T = state.Uinv_T / gamma + P.T @ (c[:, None] * H)
    omega = gamma * state.omega - eta * H.T @ (fwd.alpha * fwd.h_omega + fwd.beta)
    rows = (-eta * fwd.a[:, :, None] * P[:, None, :]).reshape(-1, d)
    # The scatter into V must come after the gather of V's rows in _forward, or XLA keeps the
    # gather's input alive by copying all of V (O(D·d) per step, which undoes the method). When the
    # update does not depend on the gathered rows (squared error: a = −2y), tie it to them with a
    # zero that XLA does not fold away (0·x is NaN for x = inf, so it is not x-free).
    rows = rows + 0.0 * fwd.loss.sum()
    V = state.V.at[label_idx.reshape(-1)].add(rows)  # K·m rows, in place when the state is donated
    w_bar = gamma * state.w_bar - eta * H.T @ (fwd.alpha * fwd.s + D * fwd.beta + fwd.a.sum(-1))
    EH = fwd.grad_h.T @ H
    Q = gamma**2 * state.Q - gamma * eta * (EH + EH.T) + eta**2 * H.T @ fwd.gram_g @ H
    return FactoredState(V=V, U=U, Uinv_T=Uinv_T, Q=0.5 * (Q + Q.T), omega=omega, w_bar=w_bar)


def loss_and_grad_h(state: FactoredState, H: jax.Array, label_idx: jax.Array, label_mask: jax.Array,
                    loss_fn: SphericalLoss) -> tuple[jax.Array, jax.Array]:
    """Per-point loss [m] and ∇_{h_i} L_i [m, d], without an update."""
    fwd = _forward(state, H, label_idx, label_mask, loss_fn)
    return fwd.loss, fwd.grad_h


def minibatch_update(state: FactoredState, H: jax.Array, label_idx: jax.Array, label_mask: jax.Array,
                     loss_fn: SphericalLoss, eta: jax.Array, weight_decay: jax.Array | float = 0.0,
                     ) -> tuple[FactoredState, jax.Array, jax.Array]:
    """One exact SGD step W ← W − η (∇_W Σ_i L_i + λ W) on the minibatch (Woodbury for U⁻ᵀ).

    Returns (new state, per-point loss [m], ∇_{h_i} L_i [m, d]), both at the old W.
    """
    fwd = _forward(state, H, label_idx, label_mask, loss_fn)
    return _apply(state, fwd, H, label_idx, eta, weight_decay), fwd.loss, fwd.grad_h


def sequential_update(state: FactoredState, H: jax.Array, label_idx: jax.Array, label_mask: jax.Array,
                      loss_fn: SphericalLoss, eta: jax.Array, weight_decay: jax.Array | float = 0.0,
                      ) -> tuple[FactoredState, jax.Array, jax.Array]:
    """One exact SGD step per example, in order (Sherman–Morrison for U⁻ᵀ): online SGD.

    Example i's loss and ∇h are taken at W after the steps of examples 0..i-1.
    """

    def body(st, x):
        h, idx, mask = x
        st, loss, grad_h = minibatch_update(st, h[None], idx[None], mask[None], loss_fn, eta, weight_decay)
        return st, (loss[0], grad_h[0])

    state, (loss, grad_h) = jax.lax.scan(body, state, (H, label_idx, label_mask))
    return state, loss, grad_h


class Stability(NamedTuple):
    """What `stabilize` found: U's singular values before, how many left the band, what it did."""

    singular_values: jax.Array  # [d], descending
    num_outside: jax.Array  # int
    action: jax.Array  # 0 = re-inverted U⁻ᵀ only, 1 = rank-one corrections, 2 = re-factorised


def stabilize(state: FactoredState, band: float = 2.0, max_corrections: int = 8,
              max_outside_fraction: float = 1 / 3) -> tuple[FactoredState, Stability]:
    """Keeps U well conditioned without changing W (the authors' singular_stabilize).

    Why it is needed: each step multiplies U by M = I − η Hᵀ diag(α) H, which shrinks U along the
    directions the data spans (the untouched rows of W really do decay there), while the touched
    rows of V grow by U⁻ᵀh. In float32 U⁻ᵀ, Q and V lose their accuracy once U's condition number
    is large, so a singular value of U that leaves the band has to be reset before it gets far.

    Always re-inverts U⁻ᵀ from U (iterated Woodbury updates drift). Then the out-of-band singular
    values of U (outside [1/band, band]; the `max_corrections` farthest out, the rest wait for the
    next call) are reset to 1 by U ← C U, V ← V C⁻¹ with C = I + Σ_k α_k u_k u_kᵀ over their left
    singular vectors u_k (α_k = 1/σ_k − 1): V·U is unchanged and the cost is O(D·d) per corrected
    value. When more than `max_outside_fraction` of them are out, it re-factorises instead, in
    O(D·d²): V ← W, U ← I, ω ← 0, with Q and w̄ recomputed from W (which also clears their drift).
    Nothing touches V while U stays in the band.
    """
    d = state.U.shape[0]
    r = min(max_corrections, d)
    left, sv, right_t = jnp.linalg.svd(state.U)
    outside = (sv < 1.0 / band) | (sv > band)
    num_outside = outside.sum()
    # U⁻ᵀ = L Σ⁻¹ Rᵀ from the same SVD (XLA-CPU's pivoted inverse is slow; this is as accurate).

    def correct(st):
        worst = jnp.argsort(jnp.where(outside, -jnp.abs(jnp.log(sv)), jnp.inf))[:r]
        fix = jnp.zeros(d, bool).at[worst].set(outside[worst])
        u, sv_r, fix_r = left[:, worst], sv[worst], fix[worst]
        alpha = jnp.where(fix_r, 1.0 / sv_r - 1.0, 0.0)  # C = I + u diag(α) uᵀ (the u are orthonormal)
        beta = jnp.where(fix_r, sv_r - 1.0, 0.0)  # C⁻¹ = I + u diag(β) uᵀ, since (1 + α)(1 + β) = 1
        U = st.U + (u * alpha) @ (u.T @ st.U)  # C U = L diag(σ') Rᵀ with σ' = 1 where fixed
        V = st.V + ((st.V @ u) * beta) @ u.T
        return st.replace(U=U, V=V, Uinv_T=(left / jnp.where(fix, 1.0, sv)) @ right_t)

    def refactorize(st):
        W = weights(st)
        return FactoredState(V=W, U=jnp.eye(d, dtype=W.dtype), Uinv_T=jnp.eye(d, dtype=W.dtype), Q=W.T @ W,
                             omega=jnp.zeros_like(st.omega), w_bar=W.sum(0))

    def fix_once(carry):
        st, _ = carry
        return jax.lax.cond(num_outside > max_outside_fraction * d, refactorize, correct, st), jnp.array(False)

    action = jnp.where(num_outside == 0, 0, jnp.where(num_outside > max_outside_fraction * d, 2, 1))
    state = state.replace(Uinv_T=(left / sv) @ right_t)
    # A while loop that runs once or not at all, rather than a cond with a do-nothing branch: XLA
    # copies V out of a conditional even on the branch that returns it unchanged (O(D·d) per call),
    # but updates a loop's carry in place, so a call that finds U in its band never touches V.
    state, _ = jax.lax.while_loop(lambda carry: carry[1], fix_once, (state, num_outside > 0))
    return state, Stability(sv, num_outside, action)


def topk(state: FactoredState, H: jax.Array, k: int, label_chunk: int) -> tuple[jax.Array, jax.Array]:
    """Top-k of o = V (U h) + ωᵀh over label chunks: the one O(D d) pass, at prediction only."""
    UH = H @ state.U.T
    h_omega = H @ state.omega

    def score_chunk(start, size):
        return UH @ jax.lax.dynamic_slice_in_dim(state.V, start, size, axis=0).T + h_omega[:, None]

    return chunked_topk(score_chunk, H.shape[0], state.V.shape[0], label_chunk, k)
