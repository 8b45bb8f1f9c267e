"""The tree-gated layer's computations side by side at training batch sizes: forward and training step.

  python -m experiments.benchmarks.gated_forms [--depths 0,2,4,6,8,10] [--batches 16,64,256] --out gated_forms.json

Three forms of the same layer (d -> d, output blocks of --block-size units each with its own k
gates: the layer of configs/gated.py on XC data), on the same parameters and batches:
  before   every level gathered per example, gradient by autodiff (the layer before the top
           levels were computed as one product; reproduced here as `before_apply`)
  gather   every level gathered per example, the gradient scattered level after level into one
           buffer (GatedDense with dense_level_blocks=0)
  levels   the default: the top levels with at most 16 blocks, where the batch has >= 4 examples
           per block, as one product of the batch with all their blocks; the rest as `gather`
Rows: depth, batch, then per form the forward time (`*_fwd_ms`) and the time of a training step's
gradient (forward and backward with respect to the parameters and the input, `*_train_ms`), ms
per batch, and the speed-ups of `levels` over `before`. Then the training step with
gate_gradient=straight_through (the forward is the same):
  st_before  the straight-through term as it was: t_j (W[one_j] - W[zero_j]) with t_j = pre_j -
             stop_grad(pre_j), the 2k sibling blocks of every example gathered at once
             ([B, O, k, d, size], twice) and autodiff's gradient (reproduced as
             `straight_through_before_apply`, on top of the default layer)
  st_levels  the layer now: the siblings read one level at a time in the backward pass
and `st_train_speedup` = st_before / st_levels. Timing as experiments/benchmarks/gated.py
(fresh batches in one jitted loop per ~20 ms call, median over round-robin calls): the forward
passes of all forms and depths of one batch size take turns in a new random order each round,
then the training steps likewise, so that a change of the machine's load hits them alike and no
call always follows the same other one (a call that follows a kernel-sized training step finds
the caches and the allocator in another state: in a fixed order `gather` forward, which always
followed `before` training, came out up to 1.8x slower than `before` forward, the same computation).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import write_report
from experiments.benchmarks.gated import POOL_EXAMPLES, StreamTimer, chunked_normal
from xcs.gated.layer import GatedDense, GatedSpec, blocks_used, gate_unit_ids, path_nodes

FORMS = ("before", "gather", "levels")
STRAIGHT_THROUGH_FORMS = ("st_before", "st_levels")  # training step only


def before_apply(params: dict, x: jax.Array, spec: GatedSpec) -> jax.Array:
    """The tree layer as it was: each example's k + 1 blocks gathered and summed, autodiff's gradient."""
    kernel, bias = params["params"]["kernel"], params["params"]["bias"]
    units = jnp.asarray(gate_unit_ids(spec, x.shape[-1], kernel.shape[1]))
    ids = path_nodes((x[:, units] > 0).astype(jnp.int32))  # [B, O, k + 1]
    out_block = jnp.arange(kernel.shape[1])[None, :]
    w, b = kernel[ids[..., 0], out_block], bias[ids[..., 0], out_block]
    for j in range(1, ids.shape[-1]):
        w, b = w + kernel[ids[..., j], out_block], b + bias[ids[..., j], out_block]
    return (jnp.einsum("bi,bois->bos", x, w) + b).reshape(x.shape[0], -1)


def straight_through_before_apply(params: dict, x: jax.Array, spec: GatedSpec) -> jax.Array:
    """The layer in training with the straight-through term as it was: zero-weighted sibling blocks of all k
    bits gathered at once, autodiff's gradient (on top of the layer's own gate_gradient=none output)."""
    kernel, bias = params["params"]["kernel"], params["params"]["bias"]
    n_out, size = kernel.shape[1], kernel.shape[3]
    plain = GatedDense(n_out * size, dataclasses.replace(spec, gate_gradient="none")).apply(params, x, True)
    units = jnp.asarray(gate_unit_ids(spec, x.shape[-1], n_out))
    pre = x[:, units]  # [B, O, k]
    parent = path_nodes((pre > 0).astype(jnp.int32))[..., :-1]  # the node at level j decides bit j
    one, zero, out_block = 2 * parent + 2, 2 * parent + 1, jnp.arange(n_out)[None, :, None]
    t = (pre - jax.lax.stop_gradient(pre))[..., None]  # [B, O, k, 1]: zero, d t / d pre = 1
    w = jnp.einsum("bojx,bojis->bois", t, kernel[one, out_block] - kernel[zero, out_block])
    b = jnp.sum(t * (bias[one, out_block] - bias[zero, out_block]), axis=2)
    return plain + (jnp.einsum("bi,bois->bos", x, w) + b).reshape(x.shape[0], -1)


def form_apply(form: str, depth: int, dim: int, block_size: int):
    """apply(params, x) of one form; the parameters' layout is the same for all of them."""
    spec = GatedSpec(kind="tree", depth=depth, block_size=block_size, dense_level_blocks=0 if form == "gather" else 16)
    if form == "before":
        return lambda params, x: before_apply(params, x, spec)
    if form in STRAIGHT_THROUGH_FORMS:
        spec = dataclasses.replace(spec, gate_gradient="straight_through")
        if form == "st_before":
            return lambda params, x: straight_through_before_apply(params, x, spec)
        return lambda params, x: GatedDense(dim, spec).apply(params, x, True)
    return GatedDense(dim, spec).apply


def train_apply(apply):
    """A training step's gradient: d/d(params, x) of sum(tanh(y)), reduced to one number so nothing is dead."""
    grad = jax.grad(lambda params, x: jnp.sum(jnp.tanh(apply(params, x))), argnums=(0, 1))
    return lambda params, x: sum(jnp.sum(g) for g in jax.tree.leaves(grad(params, x)))


def measure(depths: list[int], batches: list[int], dim: int, block_size: int, rounds: int,
            call_s: float) -> list[dict]:
    params = {}
    for k in depths:
        shapes = jax.eval_shape(GatedDense(dim, GatedSpec(depth=k, block_size=block_size)).init,
                                jax.random.PRNGKey(0), jnp.zeros((1, dim), jnp.float32))["params"]
        std = 1 / np.sqrt(dim * blocks_used("tree", k))  # as GatedDense's initialiser
        params[k] = {"params": {"kernel": chunked_normal(jax.random.PRNGKey(k), shapes["kernel"].shape, std),
                                "bias": 0.1 * jax.random.normal(jax.random.PRNGKey(k + 100), shapes["bias"].shape)}}
    rows = []
    for batch in batches:
        rng = np.random.default_rng(batch)
        pool = jnp.asarray(rng.normal(size=(max(1, POOL_EXAMPLES // batch), batch, dim)), jnp.float32)
        timers = {}
        for k in depths:
            for form in FORMS:
                apply = form_apply(form, k, dim, block_size)
                timers[k, f"{form}_fwd_ms"] = StreamTimer(apply, params[k], pool, call_s)
                timers[k, f"{form}_train_ms"] = StreamTimer(train_apply(apply), params[k], pool, call_s)
            for form in STRAIGHT_THROUGH_FORMS:
                apply = form_apply(form, k, dim, block_size)
                timers[k, f"{form}_train_ms"] = StreamTimer(train_apply(apply), params[k], pool, call_s)
        times = {key: [] for key in timers}
        order = np.random.default_rng(0)
        for mode in ("fwd", "train"):
            keys = [key for key in timers if key[1].endswith(f"_{mode}_ms")]
            for _ in range(rounds):
                for i in order.permutation(len(keys)):
                    times[keys[i]].append(timers[keys[i]].per_batch_ms())
        for k in depths:
            row = dict(depth=k, batch=batch)
            row.update({name: statistics.median(times[k, name]) for kk, name in timers if kk == k})
            row["fwd_speedup"] = row["before_fwd_ms"] / row["levels_fwd_ms"]
            row["train_speedup"] = row["before_train_ms"] / row["levels_train_ms"]
            row["st_train_speedup"] = row["st_before_train_ms"] / row["st_levels_train_ms"]
            rows.append(row)
        del timers
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="0,2,4,6,8,10")
    parser.add_argument("--batches", default="16,64,256")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--block-size", type=int, default=64, help="output units per gated block (configs/gated.py)")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per measurement (median)")
    parser.add_argument("--call-ms", type=float, default=20.0, help="length of one timed call")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (seconds)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    if args.quick:
        depths, batches, dim, block_size, rounds, call_s = [0, 3], [16], 32, 8, 2, 0.002
    else:
        depths, batches = [int(v) for v in args.depths.split(",")], [int(b) for b in args.batches.split(",")]
        dim, block_size, rounds, call_s = args.dim, args.block_size, args.rounds, args.call_ms / 1e3
    t0 = time.perf_counter()
    rows = measure(depths, batches, dim, block_size, rounds, call_s)
    print(f"tree-gated layer {dim} -> {dim}, output blocks of {block_size}; ms per batch\n")
    write_report([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows], args.out)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
