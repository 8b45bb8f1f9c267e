"""The LSH head's own update, registered in xcs.train.head_updates.HEAD_UPDATES["lsh"]."""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from xcs.losses import get_loss
from xcs.models.lsh_head import LSHHead, update_fn
from xcs.train.optim import learning_rate_schedule


def lsh_head_update(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int):
    """HeadUpdate of the lsh head: candidate loss, row-sparse config.train.optimizer.head on its rows,
    at that optimizer's learning rate and the loop's warmup and schedule."""
    from xcs.train.head_updates import HeadUpdate  # here: xcs.train.head_updates imports this module

    if not isinstance(model.head, LSHHead):
        raise ValueError("config.model.head.name='lsh' cannot be combined with config.model.head.intermediate > 0 "
                         "or config.aux.clusters > 0")
    schedule = learning_rate_schedule(config.train.optimizer.head, config.train, total_steps)
    return HeadUpdate(schedule, update_fn(model.head, config, get_loss(config.loss.name)))
