"""Asynchronous SGD with bounded staleness, simulated deterministically (config.train.mode='async').

What it simulates: W workers that do not wait for each other. Each computes a gradient on the
parameters it last read; by the time the gradient arrives, other workers' updates have been
applied, so the gradient applied at update t was computed at θ_{t−δ_t}, δ_t ≤ τ (bounded staleness,
as in stale-synchronous / Downpour SGD). Updates are applied in arrival order to one parameter copy.

  * delay='fixed': δ_t = min(τ, W − 1) (round-robin workers of equal speed: W − 1 other updates
    land while a worker computes);
  * delay='random': δ_t uniform in {0, ..., min(τ, W − 1)}, drawn from `fold_in(key(async_.seed), t)`;
  * always δ_t ≤ t (no parameters older than the initial ones).

How: the optimizer state keeps a ring buffer of the last τ + 1 parameter snapshots
(`with_history`, history[t mod (τ+1)] = θ_t), so the whole thing is one jitted step with static
shapes, checkpointed with the train state (a resumed run draws the same delays and reads the same
snapshots) and reproducible. τ = 0 reads the current parameters: synchronous SGD exactly. The
buffer costs τ + 1 copies of the parameters.

What it does not simulate: a real parameter server (no processes, no communication, no wall-clock
speed-up, no lost or reordered messages beyond the drawn delays, no per-worker data shards:
batch t is the loop's batch t). The non-trainable model state (e.g. a sparse head's indices) is
read current, not stale. Heads that own their update (HeadMethod.async_sgd=False) are refused by validate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from xcs.core.errors import UserError
from xcs.core.protocols import HeadUpdate
from xcs.losses import LossFn
from xcs.nn.model import XMCModel
from xcs.train.sparse_table import SparseTable
from xcs.train.state import Batch, TrainState, make_train_step


class AsyncOptState(NamedTuple):
    inner: Any  # the wrapped optimizer's state
    history: Any  # params with a leading axis τ + 1: history[t mod (τ+1)] = θ_t
    count: jax.Array  # int32: updates applied (t)


def with_history(tx: optax.GradientTransformation, tau: int) -> optax.GradientTransformation:
    """`tx` whose state also keeps the last τ + 1 parameter snapshots (written after each update)."""

    def init(params):
        history = jax.tree.map(lambda p: jnp.repeat(p[None], tau + 1, axis=0), params)
        return AsyncOptState(tx.init(params), history, jnp.zeros((), jnp.int32))

    def update(grads, state: AsyncOptState, params=None):
        updates, inner = tx.update(grads, state.inner, params)
        slot = (state.count + 1) % (tau + 1)
        new_params = optax.apply_updates(params, updates)
        history = jax.tree.map(lambda h, p: h.at[slot].set(p), state.history, new_params)
        return updates, AsyncOptState(inner, history, state.count + 1)

    return optax.GradientTransformation(init, update)


def wrap_optimizer(config: ml_collections.ConfigDict, tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """The optimizer of config.train.mode: `tx` itself (sync) or `tx` with the snapshot history (async)."""
    return with_history(tx, config.async_.max_staleness) if config.train.mode == "async" else tx


def delay(config: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """δ_t of update `step` (int32 scalar, traced): fixed or drawn from the explicit delay seed."""
    a = config.async_
    bound = min(a.max_staleness, a.workers - 1)
    if a.delay == "fixed":
        d = jnp.asarray(bound, jnp.int32)
    else:
        key = jax.random.fold_in(jax.random.PRNGKey(a.seed), step)
        d = jax.random.randint(key, (), 0, bound + 1, jnp.int32)
    return jnp.minimum(d, step)


def make_async_train_step(config: ml_collections.ConfigDict, model: XMCModel, tx: optax.GradientTransformation,
                          loss_fn: LossFn, schedules: dict[str, optax.Schedule],
                          head_update: HeadUpdate | None = None) -> Callable[[TrainState, Batch, jax.Array], Any]:
    """A jitted `(state, batch, key) -> (state, metrics)` applying the gradient at θ_{t−δ_t}.

    `tx` must be `wrap_optimizer(config, ...)`'s (its state holds the snapshots). Metrics are the
    synchronous step's plus `delay`; `loss` is the worker's, i.e. at the stale parameters.
    """
    if head_update is not None:  # validate refuses this combination; a library caller may not have validated
        raise UserError(f"config.train.mode='async' with config.model.head.name={config.model.head.name!r}: a head "
                         "that owns its update (xcs.core.protocols.HeadUpdate) is not simulated asynchronously; use "
                         "train.mode=sync or a gradient-trained head")
    tau = config.async_.max_staleness

    def train_step(state: TrainState, batch: Batch, key: jax.Array):
        if not isinstance(state.opt_state, AsyncOptState):
            raise TypeError("train.mode='async' needs the optimizer from xcs.train.async_step.wrap_optimizer")
        dropout_key = jax.random.fold_in(key, state.step)
        d = delay(config, state.step)
        slot = (state.opt_state.count - d) % (tau + 1)
        stale = jax.tree.map(lambda h: h[slot], state.opt_state.history)

        def objective(params):
            per_point = model.apply({"params": params, **state.model_state}, batch, loss_fn, True,
                                    method=XMCModel.loss, rngs={"dropout": dropout_key})
            return per_point.mean()

        loss, grads = jax.value_and_grad(objective)(stale)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "delay": d}
        metrics.update({f"lr_{part}": schedule(state.step) for part, schedule in schedules.items()})
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return jax.jit(train_step, donate_argnums=0)


def make_step(config: ml_collections.ConfigDict, model: XMCModel, tx: optax.GradientTransformation, loss_fn: LossFn,
              schedules: dict[str, optax.Schedule], head_update: HeadUpdate | None = None,
              sparse_table: SparseTable | None = None) -> Callable[[TrainState, Batch, jax.Array], Any]:
    """The train step of config.train.mode: xcs.train.state.make_train_step (sync, with `sparse_table` where
    config.train.sparse_embedding is on) or the async one (validate refuses async with sparse_embedding)."""
    if config.train.mode == "async":
        return make_async_train_step(config, model, tx, loss_fn, schedules, head_update)
    return make_train_step(model, tx, loss_fn, schedules, head_update, sparse_table)
