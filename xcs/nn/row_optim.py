"""Row-sparse (lazy) Adam and SGD over an [L, D] matrix: only the given rows are read and written.

As in SLIDE and TensorFlow's LazyAdam, the moments of a row change only in steps whose gradient
touches the row, so a step costs O(rows · D), not O(L · D). When every row is touched every step
this is exactly optax.adam / optax.sgd (with L2 weight decay added to the gradient) or adamw.
Donate the state to the jitted caller so that the row scatters happen in place.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")


@flax.struct.dataclass
class RowOptState:
    count: jax.Array  # int32: steps taken (Adam's bias correction)
    m: jax.Array  # [L, D] first moment (adam) / momentum trace (sgd)
    v: jax.Array  # [L, D] second moment (adam, adamw); an unused [1, D] for sgd


def init_row_opt(weights: jax.Array, name: str, key: str = "config.train.optimizer.head") -> RowOptState:
    """Zero moments for `weights` [L, D]; `key` names the config section of the optimizer in an error."""
    if name not in OPTIMIZERS:
        raise UserError(f"{key}.name={name!r}: a row-sparse optimizer is one of {list(OPTIMIZERS)}")
    v_rows = weights.shape[0] if name != "sgd" else 1  # sgd: a [1, D] placeholder (checkpoints refuse empty arrays)
    return RowOptState(jnp.zeros((), jnp.int32), jnp.zeros_like(weights),
                       jnp.zeros((v_rows, weights.shape[1]), weights.dtype))


def row_update(weights: jax.Array, opt: RowOptState, rows: jax.Array, valid: jax.Array, grads: jax.Array,
               lr: jax.Array, cfg: ml_collections.ConfigDict) -> tuple[jax.Array, RowOptState]:
    """One step on the distinct `rows` [R] (where `valid`) with their gradients [R, D].

    `cfg` is a config.train.optimizer section (name, b1, b2, eps, momentum, weight_decay). Rows of `rows` that are
    not `valid` are neither read (row 0 stands in) nor written.
    """
    L = weights.shape[0]
    safe = jnp.where(valid, rows, 0)
    target = jnp.where(valid, rows, L)  # out of range: dropped by the scatter
    w = weights[safe]
    count = opt.count + 1
    if cfg.name in ("adam", "sgd") and cfg.weight_decay:
        grads = grads + cfg.weight_decay * w
    if cfg.name == "sgd":
        if cfg.momentum:
            m = cfg.momentum * opt.m[safe] + grads
            opt_m = opt.m.at[target].set(m, mode="drop")
        else:
            m, opt_m = grads, opt.m
        w_new = w - lr * m
        return weights.at[target].set(w_new, mode="drop"), RowOptState(count, opt_m, opt.v)
    m = cfg.b1 * opt.m[safe] + (1 - cfg.b1) * grads
    v = cfg.b2 * opt.v[safe] + (1 - cfg.b2) * jnp.square(grads)
    t = count.astype(jnp.float32)
    m_hat = m / (1 - cfg.b1**t)
    v_hat = v / (1 - cfg.b2**t)
    step = m_hat / (jnp.sqrt(v_hat) + cfg.eps)
    if cfg.name == "adamw":
        step = step + cfg.weight_decay * w
    return (weights.at[target].set(w - lr * step, mode="drop"),
            RowOptState(count, opt.m.at[target].set(m, mode="drop"), opt.v.at[target].set(v, mode="drop")))
