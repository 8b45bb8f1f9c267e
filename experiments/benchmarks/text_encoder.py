"""The pretrained text encoder (xcs.text, all-MiniLM-L6-v2): frozen embedding throughput and the
end-to-end train step.

  python -m experiments.benchmarks.text_encoder --out text_encoder.json
  python -m experiments.benchmarks.text_encoder --quick --out /tmp/text_encoder.json

`embed` rows: xcs.text.embed.embed_texts on the first `--texts` lines of `--texts_file` (default
wordnet_hypernyms' 17.5k test texts; 0 = all), once with length buckets (batches padded to a
multiple of 16 tokens) and once padded to max_len (`--padded_texts` of them, the baseline), in
the same process. seconds includes tokenization and jit compilation (one per bucket width), as a
user pays it; the side-by-side rows run after the first, whose compiled widths they reuse (on the full
test set the first row compiles every width). token_fill = real tokens / computed token slots.
cpu_seconds / step_cpu_ms: CPU time of this process (all its threads), readable on a shared machine
where wall time is not (on an idle machine wall ~ CPU / cores used).
`step` rows: one jitted end-to-end train step (encoder.name=minilm + dense softmax head over
`--labels` labels, Adam on both, state donated) at each batch x max_len, tokens all real (the
worst case of a width); step_ms = median after a warm-up that compiles.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from experiments.benchmarks.common import median_ms, peak_rss_mb, reset_peak_rss, tree_mb, write_report
from xcs.losses import get_loss
from xcs.registry import build_model
from xcs.text.embed import bucket_length, embed_texts, load_minilm
from xcs.train.optim import make_optimizer
from xcs.train.state import create_state, make_train_step

# One table for both kinds of row.
KEYS = ("part", "variant", "texts", "batch", "max_len", "labels", "seconds", "cpu_seconds", "texts_per_s",
        "mean_tokens", "token_fill", "step_ms", "step_cpu_ms", "tokens_per_s", "first_step_s", "state_mb",
        "peak_rss_mb")
DEFAULT_TEXTS = os.path.join(os.environ.get("XCS_DATA_DIR", "data"), "wordnet_hypernyms", "test_texts.txt")


def embed_row(texts: list[str], variant: str, max_len: int, batch: int) -> dict:
    _, _, tokenizer = load_minilm()
    lengths = tokenizer.encode(texts, max_len)[1].sum(axis=1)
    bucket = 16 if variant == "bucketed" else max_len
    order = np.sort(lengths)
    slots = sum(bucket_length(int(order[min(s + batch, len(order)) - 1]), max_len, bucket) * batch
                for s in range(0, len(order), batch))
    t0, c0 = time.perf_counter(), time.process_time()
    embed_texts(texts, max_len=max_len, batch_size=batch, bucket=bucket)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {"part": "embed", "variant": variant, "texts": len(texts), "max_len": max_len, "batch": batch,
            "seconds": seconds, "cpu_seconds": cpu_seconds, "texts_per_s": len(texts) / seconds,
            "mean_tokens": float(lengths.mean()), "token_fill": float(lengths.sum() / slots)}


def step_row(batch: int, max_len: int, labels: int, repeats: int) -> dict:
    config = default.get_config()
    config.data.text.inputs = "tokens"
    config.model.encoder.name = "minilm"
    config.model.encoder.width = 384
    config.train.optimizer.encoder.learning_rate = 5e-5
    model = build_model(config, num_features=1, num_labels=labels)
    rng = np.random.default_rng(0)
    example = {"token_ids": jnp.asarray(rng.integers(1000, 30000, (batch, max_len)), jnp.int32),
               "token_mask": jnp.ones((batch, max_len), jnp.int32),
               "label_idx": jnp.asarray(rng.integers(0, labels, (batch, 2)), jnp.int32),
               "label_mask": jnp.ones((batch, 2), bool)}
    loss_fn = get_loss(config.loss.name)
    tx, schedules = make_optimizer(config, total_steps=1000)
    reset_peak_rss()
    state = create_state(model, tx, example, loss_fn, jax.random.PRNGKey(0))
    state_mb = tree_mb((state.params, state.opt_state))
    step = make_train_step(model, tx, loss_fn, schedules)
    key = jax.random.PRNGKey(1)
    holder = [state]

    def run():
        holder[0], metrics = step(holder[0], example, key)
        jax.block_until_ready(metrics["loss"])

    t0 = time.perf_counter()
    run()  # compiles
    compile_s = time.perf_counter() - t0
    c0 = time.process_time()
    ms = median_ms(run, repeats, warmup=0)
    cpu_ms = (time.process_time() - c0) / repeats * 1e3
    return {"part": "step", "variant": "end_to_end", "batch": batch, "max_len": max_len, "labels": labels,
            "step_ms": ms, "step_cpu_ms": cpu_ms, "tokens_per_s": batch * max_len / ms * 1e3, "first_step_s": compile_s,
            "state_mb": state_mb, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in about a minute")
    parser.add_argument("--texts_file", default=DEFAULT_TEXTS, help="one text per line")
    parser.add_argument("--texts", type=int, default=0, help="bucketed embed row: first N texts (0 = all)")
    parser.add_argument("--padded_texts", type=int, default=2048, help="padded baseline: first N texts (0 = none)")
    parser.add_argument("--max_len", type=int, default=128, help="embed rows: tokens per text")
    parser.add_argument("--embed_batch", type=int, default=256, help="embed rows: texts per encoder call")
    parser.add_argument("--batches", default="64,128", help="step rows: batch sizes")
    parser.add_argument("--step_lens", default="32,64", help="step rows: token widths")
    parser.add_argument("--labels", type=int, default=10000, help="step rows: labels of the dense head")
    parser.add_argument("--repeats", type=int, default=3, help="step rows: timed steps after the compiling one")
    parser.add_argument("--out", default=None, help="JSON file for the rows")
    args = parser.parse_args()
    if args.quick:
        args.texts, args.padded_texts, args.max_len, args.embed_batch = 128, 128, 32, 64
        args.batches, args.step_lens, args.labels, args.repeats = "8", "16", 1000, 2
    with open(args.texts_file, encoding="utf-8") as f:
        texts = f.read().splitlines()
    rows = [embed_row(texts[:args.texts or None], "bucketed", args.max_len, args.embed_batch)]
    if args.padded_texts:
        subset = texts[:args.padded_texts]
        rows.append(embed_row(subset, "bucketed", args.max_len, args.embed_batch))  # the same texts, side by side
        rows.append(embed_row(subset, "padded", args.max_len, args.embed_batch))
    for batch in map(int, args.batches.split(",")):
        for max_len in map(int, args.step_lens.split(",")):
            rows.append(step_row(batch, max_len, args.labels, args.repeats))
    write_report([{k: row.get(k, "") for k in KEYS} for row in rows], args.out)


if __name__ == "__main__":
    main()
