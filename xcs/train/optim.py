"""Optimizers from config: one for the encoder and one for the head, each with its own schedule."""

from __future__ import annotations

import jax
import ml_collections
import optax

from xcs.core.errors import UserError
from xcs.nn.schedules import learning_rate_schedule

PARTS = ("encoder", "head")


def _transform(opt: ml_collections.ConfigDict, schedule: optax.Schedule, key: str) -> optax.GradientTransformation:
    if opt.name == "adam":
        parts = [optax.add_decayed_weights(opt.weight_decay)] if opt.weight_decay else []
        return optax.chain(*parts, optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps))
    if opt.name == "adamw":
        return optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay)
    if opt.name == "sgd":
        parts = [optax.add_decayed_weights(opt.weight_decay)] if opt.weight_decay else []
        return optax.chain(*parts, optax.sgd(schedule, momentum=opt.momentum or None))
    raise UserError(f"{key}.name={opt.name!r}: expected adam, adamw or sgd")


def make_optimizer(config: ml_collections.ConfigDict, total_steps: int,
                   ) -> tuple[optax.GradientTransformation, dict[str, optax.Schedule]]:
    """The optimizer over params {'encoder': ..., 'head': ...} and each part's schedule (for logging)."""
    train = config.train
    schedules = {p: learning_rate_schedule(train.optimizer[p], train, total_steps) for p in PARTS}
    tx = optax.multi_transform(
        {p: _transform(train.optimizer[p], schedules[p], f"config.train.optimizer.{p}") for p in PARTS},
        param_labels=lambda params: {p: jax.tree.map(lambda _, p=p: p, params[p]) for p in params})
    if train.clip_grad_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(train.clip_grad_norm), tx)
    return tx, schedules
