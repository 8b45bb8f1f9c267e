"""The LSH head beside full softmax: train step, prediction time and candidate recall per label count.

  python -m experiments.benchmarks.lsh --labels 100000,670000,3000000 --dim 128 --batch 256 --out lsh.json

Per label count, in one process: the `dense` (full softmax + Adam) and `lsh` (lookup + candidates +
row-sparse Adam) train steps exactly as experiments.benchmarks.heads times them (step_ms), then the
top-5 prediction of a batch (predict_ms: dense scores every label in chunks; lsh retrieves,
re-scores its candidates exactly and ranks). For lsh, the candidate recall on queries that point
at a label: h = the label's weight row w_y (bias folded) plus Gaussian noise of the same norm
times --noise, so the exact top-1 is mostly y, as after training;
recall_true = share of points whose y is a candidate, recall_top5 = share of the exact top-5
labels that are candidates. Settings are config.lsh's defaults (configs/default.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from experiments.benchmarks.common import median_ms, write_report
from experiments.benchmarks.heads import measure
from xcs.losses import get_loss
from xcs.lsh import head as lsh
from xcs.registry import HEADS


def predict_and_recall(head_name: str, labels: int, dim: int, batch: int, repeats: int, noise: float) -> dict:
    config = default.get_config()
    config.model.head.name = head_name
    config.model.encoder.width = dim
    head = HEADS[head_name].build(config, dim, labels)
    rng = np.random.default_rng(0)
    h0 = jnp.asarray(rng.normal(size=(batch, dim)), jnp.float32)
    label_idx = jnp.zeros((batch, 1), jnp.int32)
    variables = jax.jit(lambda k: head.init(k, h0, label_idx, jnp.ones((batch, 1), bool), get_loss("softmax"),
                                            method="loss"))(jax.random.PRNGKey(0))
    if head_name == "lsh":
        weights = variables["lsh"]["state"].weights
        rows = weights[:, :dim]
    else:
        rows = variables["params"]["kernel"].T
    y = jnp.asarray(rng.integers(0, labels, batch), jnp.int32)
    w = rows[y]
    h = w + noise * jnp.linalg.norm(w, axis=1, keepdims=True) / np.sqrt(dim) * jnp.asarray(
        rng.normal(size=(batch, dim)), jnp.float32)
    predict = jax.jit(lambda v, h: head.apply(v, h, 5, method="topk"))

    def run():
        jax.block_until_ready(predict(variables, h))

    row = dict(head=head_name, labels=labels, predict_ms=median_ms(run, repeats), recall_true=None, recall_top5=None)
    if head_name == "lsh":
        state, cfg = variables["lsh"]["state"], head.cfg
        h_aug = lsh.augment(h, head.use_bias)
        cand, valid = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(0))
        _, exact = jax.jit(lambda s, h: lsh.topk(
            dataclasses.replace(cfg, predict="exact"), s, h, 5, head.use_bias, jax.random.PRNGKey(0)))(state, h)
        row["recall_true"] = float(lsh.candidate_recall(cand, valid, y[:, None], jnp.ones((batch, 1), bool)).mean())
        row["recall_top5"] = float(lsh.candidate_recall(cand, valid, exact, exact >= 0).mean())
    variables = None
    gc.collect()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default="100000,670000,3000000")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", type=float, default=1.0, help="query noise, relative to the label row's norm")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    labels = [2000, 20000] if args.quick else [int(x) for x in args.labels.split(",")]
    dim, batch, repeats = (32, 32, 2) if args.quick else (args.dim, args.batch, args.repeats)
    rows = []
    for n in labels:
        for name in ("dense", "lsh"):
            row = measure(name, n, dim, batch, repeats)
            row.update(predict_and_recall(name, n, dim, batch, repeats, args.noise))
            rows.append({**row, "step_speedup": None, "predict_speedup": None})
        rows[-1]["step_speedup"] = rows[-2]["step_ms"] / rows[-1]["step_ms"]
        rows[-1]["predict_speedup"] = rows[-2]["predict_ms"] / rows[-1]["predict_ms"]
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
