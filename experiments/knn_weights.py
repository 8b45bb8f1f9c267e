"""The kNN mix at prediction (config.eval.knn) at several settings, for one trained run, without retraining.

    python -m experiments.knn_weights --workdir runs/wn_val --neighbors 10 --temperatures 0.05 \
        --weights 0,0.2,0.35,0.5 --out experiments/results/knn/wn_val.json

Reads the run's config.json and latest checkpoint, builds the kNN memory once from its training split,
and evaluates each (neighbors, temperature, weight) on the split the run is evaluated on (its held-out
validation part when it was trained with config.data.validation_fraction > 0; choose settings there,
not on the test split). Weight 0 is the head alone. `--votes whole` gives each label of a neighbour its whole
weight instead of a share (xcs.train.knn). Prints a table and writes JSON (rows + machine).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from absl import app, flags

from configs import default
from experiments.benchmarks.common import write_report
from xcs.data.batching import Batcher
from xcs.data.dataset import load_dataset
from xcs.losses import get_loss
from xcs.metrics import inverse_propensity
from xcs.registry import build_model
from xcs.train import knn
from xcs.train.auto import resolve_auto, split_top_label_share
from xcs.train.checkpoint import Checkpointer
from xcs.train.evaluate import evaluate
from xcs.train.optim import make_optimizer
from xcs.train.sparse_table import optimizer_init
from xcs.train.state import create_state, variables
from xcs.validate import validate

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "a finished (or checkpointed) run's workdir", required=True)
flags.DEFINE_list("neighbors", ["10"], "K values")
flags.DEFINE_list("temperatures", ["0.05"], "softmax temperatures of the neighbour weights")
flags.DEFINE_list("weights", ["0", "0.2", "0.35", "0.5"], "mixing weights of the neighbour vote (0 = head alone)")
flags.DEFINE_string("out", None, "JSON output path")
flags.DEFINE_enum("votes", "split", ["split", "whole"],
                  "a neighbour's weight per label: split over its labels (what prediction does) or whole")


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


def main(argv: Sequence[str]) -> None:
    del argv
    config, data, model, params = restore_run(FLAGS.workdir)
    config.eval.knn.neighbors = max(map(int, FLAGS.neighbors))
    validate(config)  # a head or loss the mix cannot use is refused before the memory is built
    split = "validation" if config.data.validation_fraction > 0 else "test"
    buckets = config.data.text.length_buckets
    train = Batcher(data.train, config.data.max_features, config.data.max_labels, buckets)
    evaluated = Batcher(data.test, config.data.max_features, 0, buckets)
    memory = knn.build_memory(model, params, train, config.eval.batch_size)
    inv_ps = inverse_propensity(data.train.labels, config.eval.propensity_a, config.eval.propensity_b)
    rows = []
    for neighbors in map(int, FLAGS.neighbors):
        for temperature in map(float, FLAGS.temperatures):
            for weight in map(float, FLAGS.weights):
                if weight == 0 and rows and rows[0]["weight"] == 0:
                    continue  # the head alone does not depend on K or T
                setting = ml_collections.ConfigDict(dict(config.eval.knn.to_dict(), neighbors=neighbors,
                                                         temperature=temperature, weight=weight))
                predict = knn.make_knn_predict(model, config.eval.top_k, setting, memory,
                                               knn.ova_labels(config.loss.name, data.num_labels),
                                               FLAGS.votes == "split")
                m = evaluate(predict, params, evaluated, config.eval.batch_size, config.eval.top_k, inv_ps)
                rows.append({"split": split, "votes": FLAGS.votes, "neighbors": neighbors, "temperature": temperature,
                             "weight": weight,
                             **{k: round(m[k], 2) for k in ("P@1", "P@3", "P@5", "PSP@1", "PSP@3", "PSP@5")}})
    write_report(rows, FLAGS.out)


if __name__ == "__main__":
    app.run(main)
