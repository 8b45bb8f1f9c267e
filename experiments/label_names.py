"""How much a label's name could add to a trained run's prediction, measured without retraining.

    python -m experiments.label_names --workdir runs/tables/panel/wn_d2_random-950bbd2d \
        --mix 0,0.05,0.1,0.2,0.35 --out experiments/results/panel/label_names/wn_d2_random.json

For data whose labels have names made of words of the input vocabulary (labels.txt and vocab.txt beside the
XC files, as xcs.data.build writes them: a hypernym's lemma, a header's path), each label gets a vector over
the features: the idf of its name's tokens (xcs.data.tfidf.tokenize, the idf from the training split's
feature counts), L2-normalised. A point's match with a label is the cosine of its L2-normalised features with
that vector, a score that needs no training and exists for labels never seen in training. Each row scores

    (1 - μ) · prediction + μ · match

where `prediction` is what the run predicts (the head's probabilities mixed with the kNN votes as its
config.eval.knn says, xcs.train.knn), for μ in --mix (0 = the run as it is), on the split the run is
evaluated on (its held-out validation part when config.data.validation_fraction > 0). The match reads a
point's whole feature row (the model reads its data.max_features strongest). A measurement, not a method: each
batch of 512 points is scored densely over all labels in numpy. Runs of the lsh head (the tf-idf default) only.
Prints a table and writes JSON.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import jax
import numpy as np
from absl import app, flags

from experiments.benchmarks.common import write_report
from experiments.label_name_match import name_vectors, rows_unit
from experiments.restore import restore_run
from xcs.data.batching import Batcher, eval_batches
from xcs.losses import ova_offset
from xcs.metrics import evaluate_predictions, inverse_propensity
from xcs.train import knn

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "a finished run's workdir (XC data with labels.txt and vocab.txt)", required=True)
flags.DEFINE_list("mix", ["0", "0.05", "0.1", "0.2", "0.35"], "weights μ of the name match (0 = the run alone)")
flags.DEFINE_string("out", None, "JSON output path")


def _refuse(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(2)


def main(argv: Sequence[str]) -> None:
    del argv
    config, data, model, params = restore_run(FLAGS.workdir)
    vocab_path = os.path.join(data.location, "vocab.txt")
    if config.model.head.name != "lsh":  # the head whose label rows are read below
        _refuse(f"{FLAGS.workdir}: model.head.name={config.model.head.name!r}; this measurement reads the lsh head's "
                "rows (the tf-idf default)")
    if data.label_names is None or not os.path.exists(vocab_path):
        _refuse(f"{data.location}: the label-name match needs labels.txt and vocab.txt beside the data")
    with open(vocab_path, encoding="utf-8") as f:
        vocabulary = [line.rstrip("\n") for line in f]
    labels = name_vectors(data.label_names, vocabulary, data.train.features)
    points = rows_unit(data.test.features.to_scipy())
    split = "validation" if config.data.validation_fraction > 0 else "test"

    buckets = config.data.text.length_buckets
    memory = knn.build_memory(model, params, Batcher(data.train, config.data.max_features, config.data.max_labels,
                                                     buckets), config.eval.batch_size)
    setting = config.eval.knn
    ova = config.loss.name == "ova"

    @jax.jit
    def embed_and_vote(batch):
        h = model.apply(params, batch, False)
        if not setting.neighbors:  # the head alone
            return h, np.full((h.shape[0], 0), -1, np.int32), np.zeros((h.shape[0], 0), np.float32)
        similarity, rows = knn.neighbours(knn.unit_rows(h), memory.embeddings, setting.neighbors, setting.memory_chunk)
        return (h, *knn.neighbour_votes(similarity, rows, memory, setting.temperature))

    weights = np.asarray(model.apply(params, method=lambda m: m.head.state.value.weights))  # [L, D]: rows [w, b]
    mixes = [float(m) for m in FLAGS.mix]
    predictions = {m: [] for m in mixes}
    start = 0
    evaluated = Batcher(data.test, config.data.max_features, 0, buckets)
    for batch, valid in eval_batches(evaluated, 512):
        h, vote_ids, votes = (np.asarray(a)[:valid] for a in embed_and_vote(batch))
        logits = np.concatenate([h, np.ones((valid, weights.shape[1] - h.shape[1]), h.dtype)], axis=1) @ weights.T
        if ova:
            probability = 1.0 / (1.0 + np.exp(ova_offset(data.num_labels) - logits))
        else:
            probability = np.exp(logits - logits.max(axis=1, keepdims=True))
            probability /= probability.sum(axis=1, keepdims=True)
        vote = np.zeros_like(probability)
        found = vote_ids >= 0
        np.add.at(vote, (np.nonzero(found)[0], vote_ids[found]), votes[found])
        prediction = (1.0 - setting.weight) * probability + setting.weight * vote if setting.neighbors else probability
        match = (points[start:start + valid] @ labels.T).toarray()
        start += valid
        for m in mixes:
            score = (1.0 - m) * prediction + m * match
            top = np.argpartition(-score, config.eval.top_k, axis=1)[:, : config.eval.top_k]
            order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1, kind="stable")
            predictions[m].append(np.take_along_axis(top, order, axis=1))
    inv_ps = inverse_propensity(data.train.labels, config.eval.propensity_a, config.eval.propensity_b)
    named = float(np.mean(np.diff(labels.indptr) > 0))
    rows = []
    for m in mixes:
        metrics = evaluate_predictions(np.concatenate(predictions[m]), data.test.labels, inv_ps, config.eval.top_k)
        rows.append({"split": split, "loss": config.loss.name, "labels_named": round(named, 3), "mix": m,
                     **{k: round(metrics[k], 2) for k in ("P@1", "P@3", "P@5", "PSP@1", "PSP@3", "PSP@5")}})
    write_report(rows, FLAGS.out)


if __name__ == "__main__":
    app.run(main)
