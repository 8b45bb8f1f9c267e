"""A trained run restored for measurements that re-score it without retraining (experiments.knn_weights,
experiments.label_names)."""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from configs import default
from xcs.data.batching import Batcher
from xcs.data.dataset import load_dataset
from xcs.losses import get_loss
from xcs.registry import build_model
from xcs.train.auto import resolve_auto, split_top_label_share
from xcs.train.checkpoint import Checkpointer
from xcs.train.optim import make_optimizer
from xcs.train.sparse_table import optimizer_init
from xcs.train.state import create_state, variables


def restore_run(workdir: str):
    """(config, data, model, variables) of the latest checkpoint in `workdir`.

    The run's config.json is laid over configs/default.py's config, so a key added since the run was
    made takes its default (which keeps the older behaviour); loss.name=auto is resolved as training resolved it.
    """
    config = default.get_config()
    with open(os.path.join(workdir, "config.json")) as f:
        config.update(json.load(f))
    data = load_dataset(config.data, config.seed)
    config = resolve_auto(config, split_top_label_share(data.train))
    model = build_model(config, data.num_features, data.num_labels, data=data, workdir=workdir)
    tx, _ = make_optimizer(config, 1)
    batcher = Batcher(data.train, config.data.max_features, config.data.max_labels, config.data.text.length_buckets)
    state = create_state(model, tx, batcher(np.arange(2)), get_loss(config.loss.name), jax.random.PRNGKey(0),
                         optimizer_init(config, tx))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
    step = checkpointer.latest_step()
    if step is None:
        raise FileNotFoundError(f"{workdir}/checkpoints: no checkpoint to evaluate")
    state = checkpointer.restore(step, state)
    checkpointer.close()
    return config, data, model, variables(state)
