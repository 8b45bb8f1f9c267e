"""The LSH head's declaration: candidate retrieval for the output layer (WTA/DWTA/SimHash tables)."""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from xcs.core.checks import choice, require
from xcs.core.protocols import HeadMethod, HeadUpdate
from xcs.lsh.actions import lsh_actions
from xcs.lsh.layer import LOSSES, LSHHead, lsh_config, make_lsh_head, update_fn
from xcs.lsh.recall import candidate_recall_metrics
from xcs.nn.row_optim import OPTIMIZERS
from xcs.nn.schedules import learning_rate_schedule


def check(config: ml_collections.ConfigDict) -> None:
    choice(config, "train.optimizer.head.name", OPTIMIZERS)
    lsh_config(config, config.model.encoder.width + int(config.model.head.use_bias))  # the table settings' rules
    c = config.lsh
    if c.rehash != "none":
        require(c.rehash_interval >= 1, config, "lsh.rehash_interval", f"must be >= 1 for rehash={c.rehash!r}")
    require(c.rehash_growth >= 1.0, config, "lsh.rehash_growth", "must be >= 1")
    require(0.0 <= c.drift_threshold <= 1.0, config, "lsh.drift_threshold", "must be in [0, 1]")
    require(c.drift_sample >= 1, config, "lsh.drift_sample", "must be >= 1")
    require(c.rebuild_interval >= 0, config, "lsh.rebuild_interval", "must be >= 0 (0 = never)")
    require(0.0 <= c.candidate_share <= 1.0, config, "lsh.candidate_share", "must be in [0, 1]")
    if config.eval.knn.neighbors > 0:
        require(c.predict == "exact", config, "eval.knn.neighbors",
                "the kNN mix reads the softmax over all labels: with the lsh head it needs lsh.predict='exact'")


def head_update(config: ml_collections.ConfigDict, model: nn.Module, total_steps: int) -> HeadUpdate:
    """Candidate loss, row-sparse config.train.optimizer.head on its rows, at that optimizer's learning
    rate with the loop's warmup and schedule."""
    assert isinstance(model.head, LSHHead), "validate refuses wrappers around the lsh head"
    schedule = learning_rate_schedule(config.train.optimizer.head, config.train, total_steps)
    return HeadUpdate(schedule, update_fn(model.head, config))


METHOD = HeadMethod(
    name="lsh", build=make_lsh_head, losses=LOSSES, check=check, update=head_update, actions=lsh_actions,
    test_metrics=candidate_recall_metrics, intermediate=False, aux=False, async_sgd=False, knn=True,
    summary="scores only the labels its hash tables retrieve for the batch (WTA, DWTA, SimHash; SLIDE, MONGOOSE)")
