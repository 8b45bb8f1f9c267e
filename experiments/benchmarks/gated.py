"""Tree-gated layer vs dense layers of the same FLOPs and of the same parameters (forward pass).

  python -m experiments.benchmarks.gated [--depths 0-12] [--batches 1,16,256] [--dim 256] --out gated.json

For each depth k and batch size B: a tree-gated layer d -> d (xcs.models.conditional.GatedDense,
one output block, gates = signs of k input units, inputs N(0, 1) so paths vary per example)
stores (2^{k+1} - 1) d^2 weights and uses k + 1 blocks per example; it is compared with a dense
layer d -> (k + 1) d (the same FLOPs per example) and a dense layer d -> (2^{k+1} - 1) d (the same
parameters; skipped above --max-dense-mb). All three are jitted with their weights passed as
arguments, and timed in the same process one after the other, per batch, as the mean over a
jitted scan of max(1, 64 // B) different batches (so that Python's dispatch, tens of
microseconds with a jitter of the same size, does not drown the work at batch 1). Rows: depth, batch, params (gated
layer's weights, biases left out), flops_per_example (2 (k + 1) d^2, the gated and the
same-FLOPs layer), gated_ms, dense_same_flops_ms, dense_same_params_ms (medians per batch).

The honest physics: every example needs its own k + 1 blocks, so a batch of B reads B (k + 1)
blocks, and at large batches the gated layer reads about as many weight bytes as a dense layer
of equal parameters (and, unlike it, cannot reuse a block across the batch in one matrix
product). Its win is the computation per example and the latency at small batches, where a
dense layer of equal parameters must read all 2^{k+1} - 1 blocks for one example. After the
table, the benchmark fits gated_ms = a + b k at each batch size (R^2) and prints the speed-up
over the same-parameter dense layer at batch 1 and k = 10.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import markdown_table, median_ms
from xcs.models.conditional import GatedDense, GatedSpec
from xcs.system import machine_info

PHYSICS = ("Each example reads its own k + 1 blocks: at large batches the gated layer reads about as many weight "
           "bytes as a dense layer of equal parameters; its win is per-example computation and latency at small "
           "batches.")


def _per_batch_ms(apply, weights, xs: jax.Array, budget_s: float) -> float:
    """Median ms per batch of apply(weights, x) over the N batches xs [N, B, d], run in one jitted scan.

    One dispatch from Python costs tens of microseconds with a jitter of the same size, which
    would drown the per-batch work at batch 1; a scan over N different batches (each output
    summed, so nothing is dead or loop-invariant) measures the work itself.
    """

    def many(weights, xs):
        def body(acc, x):
            return acc + jnp.sum(apply(weights, x)), None

        return jax.lax.scan(body, jnp.zeros(()), xs)[0]

    fn = jax.jit(many)
    run = lambda: jax.block_until_ready(fn(weights, xs))  # noqa: E731
    run()  # compile
    t0 = time.perf_counter()
    run()
    once = max(time.perf_counter() - t0, 1e-6)
    return median_ms(run, repeats=int(np.clip(budget_s / once, 3, 100)), warmup=1) / xs.shape[0]


def measure(depth: int, batch: int, dim: int, max_dense_mb: float, budget_s: float) -> dict:
    rng = np.random.default_rng(depth * 1000 + batch)
    steps = max(1, 64 // batch)  # batches per timed scan
    xs = jnp.asarray(rng.normal(size=(steps, batch, dim)), jnp.float32)
    layer = GatedDense(dim, GatedSpec(kind="tree", depth=depth, gate_units="shared"))
    params = jax.jit(layer.init)(jax.random.PRNGKey(0), xs[0])
    dense = lambda w, x: x @ w  # noqa: E731
    blocks = 2 ** (depth + 1) - 1
    row = dict(depth=depth, batch=batch, params=blocks * dim * dim, flops_per_example=2 * (depth + 1) * dim * dim)
    row["gated_ms"] = _per_batch_ms(layer.apply, params, xs, budget_s)
    del params
    w = jnp.asarray(rng.normal(size=(dim, (depth + 1) * dim)) / np.sqrt(dim), jnp.float32)
    row["dense_same_flops_ms"] = _per_batch_ms(dense, w, xs, budget_s)
    row["dense_same_params_ms"] = None
    if blocks * dim * dim * 4 / 2**20 <= max_dense_mb:
        w = jax.random.normal(jax.random.PRNGKey(1), (dim, blocks * dim), jnp.float32)
        row["dense_same_params_ms"] = _per_batch_ms(dense, w, xs, budget_s)
    del w
    return row


def linear_fits(rows: list[dict]) -> list[dict]:
    """Per batch size: least-squares gated_ms = a + b k over the measured depths, with R^2."""
    fits = []
    for batch in sorted({r["batch"] for r in rows}):
        k = np.array([r["depth"] for r in rows if r["batch"] == batch], float)
        t = np.array([r["gated_ms"] for r in rows if r["batch"] == batch], float)
        if len(k) < 3:
            continue
        slope, intercept = np.polyfit(k, t, 1)
        residual = t - (intercept + slope * k)
        r2 = 1.0 - float(residual @ residual) / max(float(((t - t.mean()) ** 2).sum()), 1e-30)
        fits.append(dict(batch=batch, depths=f"{int(k.min())}-{int(k.max())}", intercept_ms=float(intercept),
                         ms_per_depth=float(slope), r2=r2))
    return fits


def speedup_at(rows: list[dict], depth: int = 10, batch: int = 1) -> float | None:
    for r in rows:
        if r["depth"] == depth and r["batch"] == batch and r["dense_same_params_ms"] is not None:
            return r["dense_same_params_ms"] / r["gated_ms"]
    return None


def run(depths: list[int], batches: list[int], dim: int, max_dense_mb: float, budget_s: float) -> dict:
    rows = [measure(k, b, dim, max_dense_mb, budget_s) for b in batches for k in depths]
    return dict(rows=rows, fits=linear_fits(rows), speedup_k10_b1=speedup_at(rows))


def _significant(rows: list[dict]) -> list[dict]:
    """Floats as 4 significant digits (times at batch 1 are microseconds)."""
    return [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def _depths(text: str) -> list[int]:
    if "-" in text:
        lo, hi = map(int, text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="0-12", help="a range lo-hi or a comma-separated list")
    parser.add_argument("--batches", default="1,16,256")
    parser.add_argument("--dim", type=int, default=256, help="input and output width d of the layer")
    parser.add_argument("--max-dense-mb", type=float, default=4096.0, help="largest same-parameter dense layer")
    parser.add_argument("--budget-s", type=float, default=0.5, help="time spent on repeats per measurement")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (under a minute)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    if args.quick:
        depths, batches, dim, budget = list(range(0, 7)), [1, 16], 64, 0.1
    else:
        depths, batches, dim, budget = _depths(args.depths), [int(b) for b in args.batches.split(",")], args.dim, \
            args.budget_s
    result = run(depths, batches, dim, args.max_dense_mb, budget)
    print(f"tree-gated layer {dim} -> {dim}. {PHYSICS}\n")
    print(markdown_table(_significant(result["rows"])))
    print("\nlinear fit of gated_ms on depth k:\n")
    print(markdown_table(_significant(result["fits"])))
    s = result["speedup_k10_b1"]
    print(f"\nbatch 1, k = 10: dense (same params) / gated = {s:.1f}x" if s else "\n(k = 10 at batch 1 not measured)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": machine_info(), "dim": dim, "note": PHYSICS, **result}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
