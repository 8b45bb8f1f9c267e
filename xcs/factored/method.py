"""The factored head's declaration: exact gradient updates for very large sparse targets (Vincent et al. 2015)."""

from __future__ import annotations

import jax
import ml_collections

from xcs.core.checks import choice, require
from xcs.core.protocols import HeadMethod, HeadUpdate, PeriodicAction
from xcs.factored import head as factored_head
from xcs.factored.head import MODES
from xcs.nn.model import XMCModel
from xcs.nn.schedules import learning_rate_schedule
from xcs.spherical_losses import SPHERICAL_LOSSES


def check(config: ml_collections.ConfigDict) -> None:
    cfg = config.factored
    choice(config, "factored.mode", MODES)
    require(cfg.learning_rate >= 0, config, "factored.learning_rate", "must be >= 0")
    require(cfg.weight_decay >= 0, config, "factored.weight_decay", "must be >= 0")
    require(cfg.init_scale > 0, config, "factored.init_scale", "must be > 0")
    require(cfg.stabilize_every >= 0, config, "factored.stabilize_every", "must be >= 0 (0 = never)")
    require(cfg.singular_band > 1, config, "factored.singular_band", "must be > 1 (the band is [1/band, band])")
    require(cfg.max_corrections >= 1, config, "factored.max_corrections", "must be >= 1")
    require(0 < cfg.refactorize_fraction <= 1, config, "factored.refactorize_fraction", "must be in (0, 1]")
    require(config.model.head.label_chunk >= 1, config, "model.head.label_chunk", "must be >= 1")


def head_update(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> HeadUpdate:
    """Plain SGD at config.factored.learning_rate, with the loop's warmup and schedule."""
    return HeadUpdate(learning_rate_schedule(config.factored, config.train, total_steps),
                      factored_head.update_fn(model.head, config))


def actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list[PeriodicAction]:
    """Re-stabilises U every config.factored.stabilize_every steps (0 = never)."""
    every, stabilize = config.factored.stabilize_every, factored_head.stabilize_fn(config)
    run = jax.jit(lambda state, batch, key: state.replace(model_state=stabilize(state.model_state)), donate_argnums=0)
    return [PeriodicAction("factored_stabilize", every, total_steps, run)] if every > 0 else []


# The train step pulls ∇h back through the encoder alone and the update reads the head's state at a
# fixed place in model_state, so no wrapper (intermediate layer, auxiliary objective) may sit around it.
METHOD = HeadMethod(
    name="factored", build=factored_head.make_factored_head, losses=tuple(SPHERICAL_LOSSES), check=check,
    update=head_update, actions=actions, intermediate=False, aux=False, async_sgd=False,
    summary="W = V·U kept factored: an exact SGD step on a spherical loss in O(d²) per example, not O(L·d)")
