"""Periodic actions: pure functions of the train state that the loop calls at their period.

Methods that are not plain gradient descent (prune-and-regrow of a sparse head, rehashing LSH
tables, re-stabilising a factored layer) register a factory here under their head or encoder
name. The loop knows nothing of their internals: after each train step it runs every action
whose `due(step)` is true, as `state = action.run(state, batch, key)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from xcs.lsh.actions import lsh_actions
from xcs.models import factored_head
from xcs.sparsity.actions import aux_actions, rewire_actions


@dataclasses.dataclass(frozen=True)
class PeriodicAction:
    name: str
    every: int  # run after every `every`-th step
    until: int  # and only while step <= until
    run: Callable[[Any, dict, Any], Any]  # (TrainState, batch, key) -> TrainState, jitted by its owner
    at_steps: frozenset[int] = frozenset()  # if given: due exactly at these steps (e.g. growing intervals)

    def due(self, step: int) -> bool:
        if self.at_steps:
            return step in self.at_steps
        return self.every > 0 and step % self.every == 0 and step <= self.until


ActionFactory = Callable[[ml_collections.ConfigDict, nn.Module, int], list[PeriodicAction]]


def _factored_actions(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> list[PeriodicAction]:
    """Re-stabilises the factored head's U every config.factored.stabilize_every steps (0 = never)."""
    every, stabilize = config.factored.stabilize_every, factored_head.stabilize_fn(config)
    run = jax.jit(lambda state, batch, key: state.replace(model_state=stabilize(state.model_state)), donate_argnums=0)
    return [PeriodicAction("factored_stabilize", every, total_steps, run)] if every > 0 else []


# Head or encoder name (or "aux": the auxiliary objective, config.aux.clusters > 0, of any head)
# -> factory(config, model, total_steps) of that method's actions.
ACTIONS: dict[str, ActionFactory] = {"factored": _factored_actions, "sparse": rewire_actions, "aux": aux_actions,
                                     "lsh": lsh_actions}


def periodic_actions(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> list[PeriodicAction]:
    actions: list[PeriodicAction] = []
    aux = ("aux",) if config.aux.clusters > 0 else ()
    for name in (config.model.encoder.name, config.model.head.name, *aux):
        if name in ACTIONS:
            actions += ACTIONS[name](config, model, total_steps)
    return actions
