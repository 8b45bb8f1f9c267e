"""config.loss.name=auto: the loss (and what goes with it) chosen from one fact of the training labels.

The choice is a pure function of the config and the share of training points that hold the most frequent
label (`top_label_share`, kept in the workdir's data.json), so training, `xcs.predict` and an exported model
resolve a run's config the same way; config.json keeps the config as given (`auto`).
"""

from __future__ import annotations

import copy

import ml_collections

from xcs.core.errors import UserError
from xcs.data.split import Split
from xcs.losses import AUTO, choose_loss, top_label_share


def split_top_label_share(split: Split) -> float | None:
    """The share of `split`'s points holding its most frequent label (None for a split without labels)."""
    if split.labels is None:
        return None
    return top_label_share(split.labels.column_counts(), split.num_points)


def resolve_auto(config: ml_collections.ConfigDict, top_label_share: float | None) -> ml_collections.ConfigDict:
    """`config` with loss.name=auto replaced by its choice (xcs.losses.choose_loss); unchanged otherwise.

    Where the choice is ova: train.epochs scaled by loss.auto_ova_epochs (train.steps, when given, is kept) and
    model.encoder.width set to loss.auto_ova_width (when > 0). The kNN mix (eval.knn, which reads an ova head's
    sigmoids: xcs.train.knn) is kept where loss.auto_ova_knn, off otherwise; a config without that key (a run's
    config.json from before it existed) resolves as auto did then, with the mix off.
    """
    if config.loss.name != AUTO:
        return config
    if top_label_share is None:
        raise UserError("config.loss.name='auto' needs the training labels' top_label_share (data.json of the run "
                        "lacks it: a run made before auto existed)")
    resolved = copy.deepcopy(config)
    resolved.loss.name = choose_loss(top_label_share, config.loss.auto_share)
    if resolved.loss.name == "ova":
        if not config.train.steps:
            resolved.train.epochs = config.train.epochs * config.loss.auto_ova_epochs
        if config.loss.auto_ova_width:
            resolved.model.encoder.width = config.loss.auto_ova_width
        if not config.loss.get("auto_ova_knn", False):
            resolved.eval.knn.neighbors = 0
    return resolved
