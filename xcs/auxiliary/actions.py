"""The auxiliary objective's periodic action: after every step, alpha = alpha0 * cosine(step / cutoff
step), so the model itself knows nothing of steps (alpha is a variable of its `aux` collection)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from xcs.auxiliary.objective import AUX_COLLECTION, AuxObjective
from xcs.core.protocols import PeriodicAction
from xcs.nn.model import XMCModel
from xcs.nn.tree import find_module, set_path


def alpha_at(step: jax.Array | int, alpha: float, cutoff_step: int) -> jax.Array:
    """alpha * (1 + cos(pi t / cutoff)) / 2 for t < cutoff, then 0."""
    t = jnp.clip(jnp.asarray(step, jnp.float32) / max(cutoff_step, 1), 0.0, 1.0)
    return 0.5 * alpha * (1.0 + jnp.cos(jnp.pi * t))


def aux_actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list:
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
