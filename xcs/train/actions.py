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
import ml_collections


@dataclasses.dataclass(frozen=True)
class PeriodicAction:
    name: str
    every: int  # run after every `every`-th step
    until: int  # and only while step <= until
    run: Callable[[Any, dict, Any], Any]  # (TrainState, batch, key) -> TrainState, jitted by its owner

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0 and step <= self.until


ActionFactory = Callable[[ml_collections.ConfigDict, nn.Module, int], list[PeriodicAction]]

# Head or encoder name -> factory(config, model, total_steps) of that method's actions.
ACTIONS: dict[str, ActionFactory] = {}


def periodic_actions(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> list[PeriodicAction]:
    actions: list[PeriodicAction] = []
    for name in (config.model.encoder.name, config.model.head.name):
        if name in ACTIONS:
            actions += ACTIONS[name](config, model, total_steps)
    return actions
