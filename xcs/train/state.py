"""The train state pytree and the jitted functions over it: init, train step, top-k prediction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from xcs.core.protocols import HeadUpdate
from xcs.losses import LossFn
from xcs.nn.model import XMCModel
from xcs.train.sparse_table import SparseTable, SparseTableOptState, join_params, split_params

Batch = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer steps taken
    params: Any  # trainable parameters, updated by the optimizer
    opt_state: Any
    # Non-trainable variable collections of the model (e.g. a sparse head's indices, LSH tables):
    # read by every step, changed only by periodic actions (xcs.core.protocols.PeriodicAction).
    model_state: Any


def variables(state: TrainState) -> dict[str, Any]:
    """The Flax variables of the model in `state`: params plus the non-trainable collections."""
    return {"params": state.params, **state.model_state}


def state_init(model: XMCModel, tx: optax.GradientTransformation, loss_fn: LossFn,
               init_opt: Callable[[Any], Any] | None = None) -> Callable[[jax.Array, Batch], TrainState]:
    """`(key, example batch) -> TrainState`, to be jitted (xcs.train.sharded places it on a mesh).

    `init_opt`: params -> optimizer state (default tx.init; xcs.train.sparse_table.optimizer_init gives the run's)."""
    init_opt = init_opt or tx.init

    def init(key, example):
        params_key, dropout_key = jax.random.split(key)
        variables = model.init({"params": params_key, "dropout": dropout_key}, example, loss_fn, False,
                               method=XMCModel.loss)
        params = variables.pop("params")
        return TrainState(jnp.zeros((), jnp.int32), params, init_opt(params), dict(variables))

    return init


def create_state(model: XMCModel, tx: optax.GradientTransformation, example: Batch, loss_fn: LossFn,
                 key: jax.Array, init_opt: Callable[[Any], Any] | None = None) -> TrainState:
    """Initial parameters and optimizer state (jitted, so nothing is built twice)."""
    return jax.jit(state_init(model, tx, loss_fn, init_opt))(key, example)


def make_train_step(model: XMCModel, tx: optax.GradientTransformation, loss_fn: LossFn,
                    schedules: dict[str, optax.Schedule], head_update: HeadUpdate | None = None,
                    sparse_table: SparseTable | None = None) -> Callable[[TrainState, Batch, jax.Array], Any]:
    """A jitted `(state, batch, key) -> (state, metrics)`; the input state is donated.

    With `head_update` (a head that owns its update, xcs.core.protocols.HeadUpdate) the head is not
    differentiated: it updates its state in model_state and returns ∂loss/∂h, which is pulled back
    through the encoder. With `sparse_table` (config.train.sparse_embedding) the encoder's embedding
    table is differentiated and updated only at the batch's rows (xcs.train.sparse_table); the state's
    optimizer state is then a SparseTableOptState.
    """

    def train_step(state: TrainState, batch: Batch, key: jax.Array):
        dropout_key = jax.random.fold_in(key, state.step)
        model_state = state.model_state
        if sparse_table is None:
            trained = state.params

            def inputs(trained):
                return trained, batch
        else:
            rest, table = split_params(state.params)
            rows, valid, pos = sparse_table.batch_rows(batch["feat_idx"])
            trained = (rest, table[jnp.where(valid, rows, 0)])

            def inputs(trained):
                rest, gathered = trained
                return join_params(rest, table), {**batch, "feat_rows": gathered[pos]}

        if head_update is None:
            def objective(trained):
                params, batch_in = inputs(trained)
                per_point = model.apply({"params": params, **state.model_state}, batch_in, loss_fn, True,
                                        method=XMCModel.loss, rngs={"dropout": dropout_key})
                return per_point.mean()

            loss, grads = jax.value_and_grad(objective)(trained)
        else:
            def encode(trained):
                params, batch_in = inputs(trained)
                return model.apply({"params": params, **state.model_state}, batch_in, True,
                                   rngs={"dropout": dropout_key})

            h, pullback = jax.vjp(encode, trained)
            head_lr = head_update.learning_rate(state.step)
            model_state, per_point, grad_h = head_update.update(
                state.model_state, h, batch, head_lr, jax.random.fold_in(dropout_key, 1))
            (grads,) = pullback(grad_h.astype(h.dtype))
            loss = per_point.mean()
        if sparse_table is None:
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        else:
            rest_grads, row_grads = grads
            updates, dense_opt = tx.update(rest_grads, state.opt_state.dense, rest)
            table, table_opt = sparse_table.step(table, state.opt_state.table, rows, valid, row_grads, state.step)
            params = join_params(optax.apply_updates(rest, updates), table)
            opt_state = SparseTableOptState(dense_opt, table_opt)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
        metrics.update({f"lr_{part}": schedule(state.step) for part, schedule in schedules.items()})
        if head_update is not None:
            metrics["lr_head"] = head_lr
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state)
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0)


def make_predict(model: XMCModel, k: int) -> Callable[[dict, Batch], tuple[jax.Array, jax.Array]]:
    """A jitted `(variables, batch) -> (scores [B, k], label ids [B, k])`."""
    return jax.jit(lambda variables, batch: model.apply(variables, batch, k, method=XMCModel.topk))
