"""The periodic action of dynamic sparse training: prune-and-regrow of the fixed fan-in head every
config.sparsity.rewire_interval steps while step <= rewire_end * total steps (none for
algorithm=static). `run(state, batch, key) -> state` is a pure function of the train state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from xcs.core.errors import ConfigError, UserError
from xcs.core.protocols import PeriodicAction
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.nn.tree import Path, find_module, get_path, nest, set_path
from xcs.sparsity.head import COLLECTION, INTERMEDIATES, PERTURBATIONS, FanInHead
from xcs.sparsity.rewire import max_drop, num_to_drop, prune_regrow, reset_slots, rigl_scores, set_scores


def logit_gradient_and_inputs(model: XMCModel, loss_fn, state: Any, batch: dict, path: Path,
                              key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(dloss/dlogits [B, L], the head's input h [B, d]) on `batch`, for the fan-in head at `path`.

    The gradient is taken w.r.t. a zero perturbation added to the head's logits, and h is sown by
    the head; both are standard Flax mechanisms, so no [L, d] gradient is ever formed.
    """
    num_labels = get_path(state.params, path)["weight"].shape[0]
    batch_size = batch["label_idx"].shape[0]
    zeros = jnp.zeros((batch_size, num_labels), jnp.float32)

    def objective(perturbation):
        variables = {"params": state.params, **state.model_state, PERTURBATIONS: nest(path, {"logits": perturbation})}
        per_point, sown = model.apply(variables, batch, loss_fn, True, method=XMCModel.loss, rngs={"dropout": key},
                                      mutable=[INTERMEDIATES])
        return per_point.mean(), sown[INTERMEDIATES]

    g, sown = jax.grad(objective, has_aux=True)(zeros)
    return g, get_path(sown, path)["inputs"][0]


# (model, loss_fn, state, batch, path of the head, key) -> (start, size) -> scores [size, d] of the inputs that
# label rows start..start+size may regrow (xcs.sparsity.rewire.GrowScores: never [L, d] at once)
RegrowthScores = Callable[[XMCModel, Any, Any, dict, Path, jax.Array], jax.Array]


def _set(model: XMCModel, loss_fn, state: Any, batch: dict, path: Path, key: jax.Array) -> jax.Array:
    """SET: regrow at random."""
    head, _ = find_module(model, FanInHead)
    return set_scores(key, head.in_features)


def _rigl(model: XMCModel, loss_fn, state: Any, batch: dict, path: Path, key: jax.Array) -> jax.Array:
    """RigL: regrow where the gradient of the loss w.r.t. the missing weight is largest."""
    return rigl_scores(*logit_gradient_and_inputs(model, loss_fn, state, batch, path, key))


# config.sparsity.algorithm -> its regrowth scores; `static` (no rewiring) is the one name not here.
# A new prune-and-regrow algorithm is one function and one line here.
REGROWTH: dict[str, RegrowthScores] = {"set": _set, "rigl": _rigl}


def rewire_end_step(s: ml_collections.ConfigDict, total_steps: int) -> int:
    """The last step at which config.sparsity rewires."""
    return max(1, int(s.rewire_end * total_steps))


def rewire_actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list:
    s = config.sparsity
    regrowth_scores = REGROWTH.get(s.algorithm)
    if regrowth_scores is None:  # static: the indices stay as sampled at init
        return []
    found = find_module(model, FanInHead)
    if found is None:
        raise UserError(f"config.sparsity.algorithm={s.algorithm!r} needs the sparse head (model.head.name=sparse)")
    head, path = found
    end_step = rewire_end_step(s, total_steps)
    if s.rewire_interval > end_step:  # known only now when train.steps=0 (epochs): refused before step 1
        raise ConfigError("sparsity.rewire_interval", s.rewire_interval,
                          f"beyond the last rewiring step {end_step} (sparsity.rewire_end={s.rewire_end} of "
                          f"{total_steps} steps): {s.algorithm!r} would never rewire; use algorithm=static or a "
                          "shorter interval")
    bound = max_drop(s.drop_fraction, head.fan_in, head.in_features)
    loss_fn = get_loss(config.loss.name)
    limit = 1.0 / head.fan_in**0.5

    def run(state, batch, key):
        key = jax.random.fold_in(jax.random.fold_in(key, state.step), 0x5e7)
        score_key, init_key = jax.random.split(key)
        indices = get_path(state.model_state[COLLECTION], path)["indices"]
        weight = get_path(state.params, path)["weight"]
        scores = regrowth_scores(model, loss_fn, state, batch, path, score_key)

        def new_weight(start, shape):
            if s.regrow_init == "zero":
                return jnp.zeros(shape)
            return jax.random.uniform(jax.random.fold_in(init_key, start), shape, minval=-limit, maxval=limit)

        n = num_to_drop(state.step, s.drop_fraction, end_step, head.fan_in, head.in_features)
        weight, indices, regrown = prune_regrow(weight, indices, scores, n, bound, head.chunk, new_weight)
        params = set_path(state.params, path + ("weight",), weight)
        model_state = set_path(state.model_state, (COLLECTION, *path, "indices"), indices)
        opt_state = reset_slots(state.opt_state, path + ("weight",), regrown)
        return state.replace(params=params, model_state=model_state, opt_state=opt_state)

    return [PeriodicAction(f"prune_regrow_{s.algorithm}", s.rewire_interval, end_step,
                           jax.jit(run, donate_argnums=0))]
