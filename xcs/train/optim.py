"""Optimizers from config: one for the encoder and one for the head, each with its own schedule."""

from __future__ import annotations

import jax
import ml_collections
import optax

PARTS = ("encoder", "head")


def learning_rate_schedule(opt: ml_collections.ConfigDict, train: ml_collections.ConfigDict,
                           total_steps: int) -> optax.Schedule:
    """Linear warmup to the peak, then cosine decay (or constant) to the end of training."""
    peak = opt.learning_rate
    warmup = min(train.warmup_steps, max(total_steps - 1, 0))
    if train.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup, max(total_steps, warmup + 1), end_value=peak * train.final_lr_fraction)
    if train.schedule == "constant":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, max(warmup, 1)), optax.constant_schedule(peak)], [warmup])
    raise ValueError(f"config.train.schedule={train.schedule!r}: expected cosine or constant")


def _transform(opt: ml_collections.ConfigDict, schedule: optax.Schedule, key: str) -> optax.GradientTransformation:
    if opt.name == "adam":
        parts = [optax.add_decayed_weights(opt.weight_decay)] if opt.weight_decay else []
        return optax.chain(*parts, optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps))
    if opt.name == "adamw":
        return optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay)
    if opt.name == "sgd":
        parts = [optax.add_decayed_weights(opt.weight_decay)] if opt.weight_decay else []
        return optax.chain(*parts, optax.sgd(schedule, momentum=opt.momentum or None))
    raise ValueError(f"{key}.name={opt.name!r}: expected adam, adamw or sgd")


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
