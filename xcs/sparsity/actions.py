"""The periodic actions of dynamic sparse training, registered in xcs.train.actions.ACTIONS.

  sparse: prune-and-regrow of the fixed fan-in head every config.sparsity.rewire_interval steps
          while step <= rewire_end * total steps (none for algorithm=static);
  aux:    after every step, alpha of the auxiliary objective = alpha0 * cosine(step / cutoff step),
          so the model itself knows nothing of steps (alpha is a variable of its `aux` collection).

Each `run(state, batch, key) -> state` is a pure function of the train state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from xcs.losses import get_loss
from xcs.models import XMCModel
from xcs.models.head_wrappers import AUX_COLLECTION, AuxObjective
from xcs.models.sparse_head import COLLECTION, INTERMEDIATES, PERTURBATIONS, FanInHead
from xcs.sparsity.rewire import max_drop, num_to_drop, prune_regrow, reset_slots, rigl_scores, set_scores

Path = tuple[str, ...]


def find_module(module: nn.Module, cls: type, path: Path = ()) -> tuple[Any, Path] | None:
    """The first submodule of type `cls` and its variable path (the field names that lead to it)."""
    if isinstance(module, cls):
        return module, path
    for field in dataclasses.fields(module):
        child = getattr(module, field.name, None)
        if isinstance(child, nn.Module) and field.name not in ("parent",):
            found = find_module(child, cls, path + (field.name,))
            if found:
                return found
    return None


def get_path(tree: Any, path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def set_path(tree: Any, path: Path, value: Any) -> Any:
    """A copy of the nested dict `tree` with tree[path] = value (the other leaves shared)."""
    if not path:
        return value
    return {**tree, path[0]: set_path(tree[path[0]], path[1:], value)}


def nest(path: Path, value: Any) -> Any:
    return value if not path else {path[0]: nest(path[1:], value)}


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


def rewire_actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list:
    from xcs.train.actions import PeriodicAction  # here: xcs.train.actions imports this module

    s = config.sparsity
    if s.algorithm == "static":
        return []
    if s.rewire_interval <= 0:
        raise ValueError(f"config.sparsity.rewire_interval={s.rewire_interval}: must be positive for "
                         f"algorithm={s.algorithm!r}")
    if not 0.0 < s.rewire_end <= 1.0:
        raise ValueError(f"config.sparsity.rewire_end={s.rewire_end}: must be in (0, 1]")
    found = find_module(model, FanInHead)
    if found is None:
        raise ValueError(f"config.sparsity.algorithm={s.algorithm!r} needs the sparse head (model.head.name=sparse)")
    head, path = found
    end_step = max(1, int(s.rewire_end * total_steps))
    if s.rewire_interval > end_step:
        raise ValueError(f"config.sparsity.rewire_interval={s.rewire_interval} is beyond the last rewiring step "
                         f"{end_step} (config.sparsity.rewire_end={s.rewire_end} of {total_steps} steps): "
                         f"{s.algorithm!r} would never rewire; use algorithm=static or a shorter interval")
    bound = max_drop(s.drop_fraction, head.fan_in, head.in_features)
    loss_fn = get_loss(config.loss.name)
    limit = 1.0 / head.fan_in**0.5

    def run(state, batch, key):
        key = jax.random.fold_in(jax.random.fold_in(key, state.step), 0x5e7)
        score_key, init_key = jax.random.split(key)
        indices = get_path(state.model_state[COLLECTION], path)["indices"]
        weight = get_path(state.params, path)["weight"]
        if s.algorithm == "set":
            scores = set_scores(score_key, head.in_features)
        else:
            scores = rigl_scores(*logit_gradient_and_inputs(model, loss_fn, state, batch, path, score_key))

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


def alpha_at(step: jax.Array | int, alpha: float, cutoff_step: int) -> jax.Array:
    """alpha * (1 + cos(pi t / cutoff)) / 2 for t < cutoff, then 0."""
    t = jnp.clip(jnp.asarray(step, jnp.float32) / max(cutoff_step, 1), 0.0, 1.0)
    return 0.5 * alpha * (1.0 + jnp.cos(jnp.pi * t))


def aux_actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list:
    from xcs.train.actions import PeriodicAction  # here: xcs.train.actions imports this module

    found = find_module(model, AuxObjective)  # build_model checked config.aux
    if found is None:
        return []
    _, path = found
    cutoff_step = max(1, int(config.aux.cutoff * total_steps))
    schedule = jax.jit(lambda step: alpha_at(step, config.aux.alpha, cutoff_step))

    def run(state, batch, key):
        # Only alpha changes: a tiny jitted scalar update, the rest of the state is passed through.
        alpha = schedule(state.step)
        return state.replace(model_state=set_path(state.model_state, (AUX_COLLECTION, *path, "alpha"), alpha))

    return [PeriodicAction("aux_alpha", 1, cutoff_step, run)]
