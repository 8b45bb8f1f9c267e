"""Periodic maintenance of the LSH head's tables (the actions of its declaration, xcs.lsh.method).

  rehash=fixed        rehash every rehash_interval steps
  rehash=exponential  rehash after intervals rehash_interval, ·growth, ·growth², ... (weights move
                      fast early in training and slowly later; SLIDE's schedule)
  rehash=drift        every rehash_interval steps, re-hash drift_sample random label rows and rehash
                      all when more than drift_threshold of their keys changed (MONGOOSE's check)
  rebuild_interval    new hash functions, then rehash (0 = never)

Unless rehash=none, the tables are also rebuilt after the last step, so that prediction retrieves
with the final weights (and, with hash_labels=trained, every label trained so far).

Each run is a pure, jitted `(TrainState, batch, key) -> TrainState` with the state donated.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import ml_collections

from xcs.core.errors import UserError
from xcs.core.protocols import PeriodicAction
from xcs.lsh import head as lsh
from xcs.lsh.layer import LSHHead, head_state, replace_head_state


def exponential_steps(first: int, growth: float, total_steps: int) -> frozenset[int]:
    """Steps first, first + first·g, first + first·g + first·g², ... up to total_steps."""
    steps, at, gap = set(), 0.0, float(first)
    while at + gap <= total_steps:
        at += gap
        steps.add(int(round(at)))
        gap *= growth
    return frozenset(steps)


def _lift(fn):
    """A jitted TrainState action from `fn(cfg-bound LSHState, key) -> LSHState`."""

    def run(state, batch, key):
        del batch
        key = jax.random.fold_in(key, state.step)
        return state.replace(model_state=replace_head_state(state.model_state, fn(head_state(state.model_state), key)))

    return jax.jit(run, donate_argnums=0)


def lsh_actions(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> list:
    """The rehash / drift-check / rebuild actions of config.lsh."""
    head = model.head
    assert isinstance(head, LSHHead), "validate refuses wrappers around the lsh head"
    c, cfg = config.lsh, head.cfg
    if cfg.spec is None:  # uniform: no tables
        return []
    actions = []
    rehash = _lift(lambda st, key: lsh.rehash(cfg, st, key))
    if c.rehash != "none" and c.rehash_interval < 1:
        raise UserError(f"config.lsh.rehash_interval={c.rehash_interval}: must be >= 1 for rehash={c.rehash!r}")
    if c.rehash == "fixed":
        actions.append(PeriodicAction("lsh_rehash", c.rehash_interval, total_steps, rehash))
    elif c.rehash == "exponential":
        if c.rehash_growth < 1.0:
            raise UserError(f"config.lsh.rehash_growth={c.rehash_growth}: must be >= 1")
        steps = exponential_steps(c.rehash_interval, c.rehash_growth, total_steps)
        actions.append(PeriodicAction("lsh_rehash", 1, total_steps, rehash, at_steps=steps))
    elif c.rehash == "drift":
        threshold, sample = c.drift_threshold, c.drift_sample

        def check(st, key):
            drift_key, table_key = jax.random.split(key)
            stale = lsh.drift(cfg, st, drift_key, sample) > threshold
            return jax.lax.cond(stale, lambda s: lsh.rehash(cfg, s, table_key), lambda s: s, st)

        actions.append(PeriodicAction("lsh_drift_check", c.rehash_interval, total_steps, _lift(check)))
    already = any(a.name == "lsh_rehash" and a.due(total_steps) for a in actions)
    if c.rehash != "none" and not already:
        actions.append(PeriodicAction("lsh_final_rehash", 0, total_steps, rehash, at_steps=frozenset({total_steps})))
    if c.rebuild_interval > 0:
        actions.append(PeriodicAction("lsh_rebuild", c.rebuild_interval, total_steps,
                                      _lift(lambda st, key: lsh.rebuild(cfg, st, key))))
    return actions
