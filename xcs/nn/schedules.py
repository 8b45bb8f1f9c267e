"""Learning-rate schedules from config: shared by the optimizers and the heads that own their update."""

from __future__ import annotations

import ml_collections
import optax

from xcs.core.errors import UserError


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
    raise UserError(f"config.train.schedule={train.schedule!r}: expected cosine or constant")
