"""The train state, train step and prediction placed on a device mesh.

The state is built as shapes first (jax.eval_shape), its shardings derived from config.mesh.rules,
then created by `jax.jit(init, out_shardings=...)`: each device only ever allocates its own shard,
so a head too big for one device is never built whole. The step and prediction are jitted with
explicit in/out shardings; the state keeps its shardings across steps (and is donated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax
from jax.sharding import Mesh

from xcs.losses import LossFn
from xcs.nn.model import XMCModel
from xcs.parallel.mesh import batch_sharding, place_batch, replicated, tree_shardings
from xcs.train.state import Batch, TrainState, state_init, variables


def create_sharded_state(model: XMCModel, tx: optax.GradientTransformation, example: dict, loss_fn: LossFn,
                         key: jax.Array, mesh: Mesh, mesh_config: ml_collections.ConfigDict,
                         ) -> tuple[TrainState, TrainState]:
    """(state, its shardings: a TrainState of NamedShardings), the state created shard by shard."""
    init = state_init(model, tx, loss_fn)
    example = place_batch(example, mesh)
    abstract = jax.eval_shape(init, key, example)
    shardings = tree_shardings(abstract, mesh, mesh_config)
    state = jax.jit(init, in_shardings=(replicated(mesh), batch_sharding(mesh)), out_shardings=shardings)(key, example)
    return state, shardings


def shard_train_step(step: Callable[[TrainState, Batch, jax.Array], Any], mesh: Mesh, shardings: TrainState,
                     ) -> Callable[[TrainState, dict, jax.Array], Any]:
    """`step` (any (state, batch, key) -> (state, metrics)) jitted with the state's shardings, the
    batch split on `data`, the key and metrics replicated; the input state is donated."""
    jitted = jax.jit(step, in_shardings=(shardings, batch_sharding(mesh), replicated(mesh)),
                     out_shardings=(shardings, replicated(mesh)), donate_argnums=0)
    return lambda state, batch, key: jitted(state, place_batch(batch, mesh), key)


def shard_predict(predict: Callable[[Any, Batch], tuple[jax.Array, jax.Array]], mesh: Mesh, shardings: TrainState,
                  ) -> Callable[[Any, dict], tuple[jax.Array, jax.Array]]:
    """`predict(variables, batch)` with the variables' shardings; the [B, k] result is replicated, so every
    process can read it (it is small: k per point)."""
    jitted = jax.jit(predict, in_shardings=(variables(shardings), batch_sharding(mesh)),
                     out_shardings=replicated(mesh))
    return lambda vars_, batch: jitted(vars_, place_batch(batch, mesh))
