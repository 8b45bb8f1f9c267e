"""The fixed fan-in sparse head's declaration (dynamic sparse training: static, SET, RigL)."""

from __future__ import annotations

import ml_collections

from xcs.core.checks import choice, require
from xcs.core.protocols import HeadMethod
from xcs.sparsity.actions import REGROWTH, rewire_actions, rewire_end_step
from xcs.sparsity.fanin import KERNELS
from xcs.sparsity.head import make_sparse_head


def check(config: ml_collections.ConfigDict) -> None:
    s = config.sparsity
    head = config.model.head
    width = head.intermediate if head.intermediate > 0 else config.model.encoder.width
    require(1 <= s.fan_in <= width, config, "sparsity.fan_in", f"must be between 1 and the head's input width {width}")
    choice(config, "sparsity.algorithm", ("static", *REGROWTH))  # read now: a test may register one
    choice(config, "sparsity.regrow_init", ("zero", "uniform"))
    choice(config, "sparsity.kernel", KERNELS)
    require(0.0 <= s.drop_fraction <= 1.0, config, "sparsity.drop_fraction", "must be in [0, 1]")
    require(s.block_mb > 0, config, "sparsity.block_mb", "must be > 0")
    require(s.save_logits_mb >= 0, config, "sparsity.save_logits_mb", "must be >= 0 (0: always recompute)")
    require(head.label_chunk >= 1, config, "model.head.label_chunk", "must be >= 1")
    if s.algorithm != "static":
        require(s.rewire_interval >= 1, config, "sparsity.rewire_interval",
                f"must be >= 1 for algorithm={s.algorithm!r}")
        require(0.0 < s.rewire_end <= 1.0, config, "sparsity.rewire_end", "must be in (0, 1]")
        if config.train.steps > 0:  # with epochs the step count is known once the data is read
            end = rewire_end_step(s, config.train.steps)
            require(s.rewire_interval <= end, config, "sparsity.rewire_interval",
                    f"beyond the last rewiring step {end} (rewire_end={s.rewire_end} of train.steps="
                    f"{config.train.steps}): {s.algorithm!r} would never rewire")


METHOD = HeadMethod(
    name="sparse", build=make_sparse_head, check=check, actions=rewire_actions, knn=True,
    summary="fixed fan-in sparse layer: every label reads sparsity.fan_in inputs; SET/RigL prune-and-regrow")
