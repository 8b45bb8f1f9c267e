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

from collections.abc import Sequence

import ml_collections
from absl import app, flags

from experiments.benchmarks.common import write_report
from experiments.restore import restore_run
from xcs.data.batching import Batcher
from xcs.metrics import inverse_propensity
from xcs.train import knn
from xcs.train.evaluate import evaluate
from xcs.validate import validate

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "a finished (or checkpointed) run's workdir", required=True)
flags.DEFINE_list("neighbors", ["10"], "K values")
flags.DEFINE_list("temperatures", ["0.05"], "softmax temperatures of the neighbour weights")
flags.DEFINE_list("weights", ["0", "0.2", "0.35", "0.5"], "mixing weights of the neighbour vote (0 = head alone)")
flags.DEFINE_string("out", None, "JSON output path")
flags.DEFINE_enum("votes", "split", ["split", "whole"],
                  "a neighbour's weight per label: split over its labels (what prediction does) or whole")


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
