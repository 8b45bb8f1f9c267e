"""A trained run re-scored with the label-name mix (xcs.train.names) at several weights, without retraining.

    python -m experiments.label_names --workdir runs/tables/panel/wn_d2_random-950bbd2d \
        --mix 0,0.05,0.1,0.2,0.35 --out experiments/results/panel/label_names/wn_d2_random.json

For data whose labels have names made of words of the input vocabulary (labels.txt and vocab.txt beside the
XC files, as xcs.data.build writes them), each row scores the run's prediction (the head's probabilities mixed
with the kNN votes as its config.eval.knn says) as

    (1 - μ) · prediction + μ · cos(point's features, the label name's idf vector)

for μ in --mix, with the exact top-k that training evaluates with (xcs.train.names.make_names_predict), on the
split the run is evaluated on (its held-out validation part when config.data.validation_fraction > 0). μ 0 is
the run without names; the weight a run chose (results.json's label_names) gives its own metrics. A measurement
on the scored split, so its best μ is optimistic: the default chooses μ on held-out training points instead.
Prints a table and writes JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from absl import app, flags

from experiments.benchmarks.common import write_report
from experiments.restore import restore_run
from xcs.data.batching import Batcher
from xcs.metrics import inverse_propensity
from xcs.registry import HEADS
from xcs.train import knn, names
from xcs.train.evaluate import evaluate

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "a finished run's workdir (XC data with labels.txt and vocab.txt)", required=True)
flags.DEFINE_list("mix", ["0", "0.05", "0.1", "0.2", "0.35"], "weights μ of the name match (0 = the run without it)")
flags.DEFINE_string("out", None, "JSON output path")


def _refuse(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def main(argv: Sequence[str]) -> None:
    del argv
    config, data, model, params = restore_run(FLAGS.workdir)
    if not HEADS[config.model.head.name].knn:
        _refuse(f"{FLAGS.workdir}: model.head.name={config.model.head.name!r} gives no exact probability of every "
                "label to mix the names with")
    if data.label_names is None or data.vocabulary is None:
        _refuse(f"{data.location}: the label-name match needs labels.txt and vocab.txt beside the data")
    index = names.build_index(data.label_names, data.vocabulary, data.train.features, data.num_features)
    buckets, setting = config.data.text.length_buckets, config.eval.knn
    memory = None
    if setting.neighbors:
        train = Batcher(data.train, config.data.max_features, config.data.max_labels, buckets)
        memory = knn.build_memory(model, params, train, config.eval.batch_size)
    predict = names.make_names_predict(model, config.eval.top_k, data.num_features, config.model.head.label_chunk,
                                       index, setting if setting.neighbors else None, memory,
                                       knn.ova_labels(config.loss.name, data.num_labels))
    evaluated = Batcher(data.test, config.data.max_features, 0, buckets)
    inv_ps = inverse_propensity(data.train.labels, config.eval.propensity_a, config.eval.propensity_b)
    split = "validation" if config.data.validation_fraction > 0 else "test"
    named = float((index.weights[:, 0] > 0).mean())
    rows = []
    for m in (float(m) for m in FLAGS.mix):
        metrics = evaluate(lambda v, b, m=m: predict(v, b, m), params, evaluated, config.eval.batch_size,
                           config.eval.top_k, inv_ps)
        rows.append({"split": split, "loss": config.loss.name, "labels_named": round(named, 3), "mix": m,
                     **{k: round(metrics[k], 2) for k in ("P@1", "P@3", "P@5", "PSP@1", "PSP@3", "PSP@5")}})
    write_report(rows, FLAGS.out)


if __name__ == "__main__":
    app.run(main)
