"""What the label-name mix costs at prediction, on a trained run: seconds per batch of the kNN-mixed prediction
alone, with the names at one weight, and with every weight of a choice at top-1 (how the run chooses μ).

  python -m experiments.benchmarks.names_predict --workdir runs/tables/panel/wn_d2_seen-94b26983 \
      --out experiments/results/benchmarks/names_predict.json

Reads the run's evaluated split (its validation part when it held one out) in batches of config.eval.batch_size;
the first batch compiles and is not timed. Rows: what, k, weights, batches, points, seconds, ms_per_point,
ratio (to the kNN mix alone).
"""

from __future__ import annotations

import argparse
import time

import jax

from experiments.benchmarks.common import write_report
from experiments.restore import restore_run
from xcs.data.batching import Batcher, eval_batches
from xcs.train import knn, names
from xcs.validate import name_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a finished run (data with labels.txt and vocab.txt)")
    parser.add_argument("--batches", type=int, default=8, help="timed batches (after one that compiles)")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args()
    config, data, model, params = restore_run(args.workdir)
    index = names.build_index(data.label_names, data.vocabulary, data.train.features, data.num_features)
    train = Batcher(data.train, config.data.max_features, config.data.max_labels, config.data.text.length_buckets)
    memory = knn.build_memory(model, params, train, config.eval.batch_size)
    ova = knn.ova_labels(config.loss.name, data.num_labels)
    batcher = Batcher(data.test, config.data.max_features, 0, config.data.text.length_buckets)
    batches = [b for b, _ in eval_batches(batcher, config.eval.batch_size)][: args.batches + 1]
    weights = name_weights(config) if len(name_weights(config)) > 1 else (0.0, 0.1, 0.2, 0.5)
    k = max(config.eval.top_k, config.eval.predict_k)

    alone = knn.make_knn_predict(model, k, config.eval.knn, memory, ova)
    with_names, choosing = (names.make_names_predict(model, top, data.num_features, config.model.head.label_chunk,
                                                     index, config.eval.knn, memory, ova) for top in (k, 1))
    cases = [("kNN mix alone", k, "-", lambda b: alone(params, b)),
             ("with label names", k, "0.2", lambda b: with_names(params, b, 0.2)),
             ("choosing μ (top-1)", 1, ",".join(f"{w:g}" for w in weights), lambda b: choosing(params, b, weights))]
    rows = []
    for what, top, ws, run in cases:
        jax.block_until_ready(run(batches[0]))
        start = time.perf_counter()
        for batch in batches[1:]:
            jax.block_until_ready(run(batch))
        seconds = time.perf_counter() - start
        points = len(batches[1:]) * config.eval.batch_size
        rows.append(dict(what=what, k=top, weights=ws, batches=len(batches) - 1, points=points,
                         seconds=round(seconds, 2), ms_per_point=round(1000 * seconds / points, 3)))
    for row in rows:
        row["ratio"] = round(row["seconds"] / rows[0]["seconds"], 2)
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
