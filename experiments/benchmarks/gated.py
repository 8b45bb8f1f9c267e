"""Tree-gated layer vs dense layers of the same FLOPs and of the same parameters (forward pass).

  python -m experiments.benchmarks.gated [--depths 0-12] [--batches 1,16,256] [--dim 256]
      [--protocol stream|cold] --out gated.json

For each depth k and batch size B: a tree-gated layer d -> d (xcs.gated.layer.GatedDense,
one output block, gates = signs of k input units, inputs N(0, 1) so paths vary per example)
stores (2^{k+1} - 1) d^2 weights and uses k + 1 blocks per example; it is compared with a dense
layer d -> (k + 1) d (the same FLOPs per example) and a dense layer d -> (2^{k+1} - 1) d (the same
parameters; skipped above --max-dense-mb). Rows: depth, batch, params (gated layer's weights,
biases left out), flops_per_example (2 (k + 1) d^2, the gated and the same-FLOPs layer), gated_ms,
dense_same_flops_ms, dense_same_params_ms: milliseconds per batch of B examples.

How a time is measured (what a batch really costs, not Python's dispatch):
  - one timed call runs the layer on n consecutive batches of a pool of 4096 / B different random
    batches inside one jitted loop (each output summed, so nothing is dead or loop-invariant);
    n is chosen so that a call lasts about --call-ms (20 ms), so that dispatch (tens of
    microseconds, with a jitter of the same size) is amortised; every call starts where the last
    one stopped in the pool, so the examples, and the gated layer's paths, are fresh;
  - the time per batch is the call's time / n, and the reported value the median over --rounds
    calls;
  - the gated and same-FLOPs layers of all depths are timed round-robin, one call each per round,
    so that a change in the machine's load during the run hits every depth alike instead of
    bending the curve over k; the same-parameter layers (up to seconds a call) follow, per depth.
That is the default, --protocol stream. With --protocol cold a timed call runs one batch, after
the caches were cleared by reading a buffer 4x the last-level cache (CacheEvictor; not timed),
and the reported value is the median over --rounds (default 301) such calls, round-robin as
above: every block then comes from main memory, as for a tree far larger than the cache or a
server that does other work between queries, and each time includes one dispatch from cold
caches (a constant over k, which the fit's intercept takes).

The honest physics: every example needs its own k + 1 blocks, so a batch of B reads B (k + 1)
blocks, and at large batches the gated layer reads about as many weight bytes as a dense layer
of equal parameters (and, unlike it, cannot reuse a block across the batch in one matrix
product, except in the few top levels that the batch shares, which the layer computes as one
product once there are >= 4 examples per block: experiments/benchmarks/gated_forms.py). Its
win is the computation per example and the latency at small batches, where a dense layer of
equal parameters must read all 2^{k+1} - 1 blocks for one example. At batch 1 the
layer is bound by reading its k + 1 blocks (d^2 floats each); level j of the tree has 2^j blocks,
so the top levels, shared by many examples, stay in the processor's caches while the blocks of
deep levels come from main memory: the time per level is higher past the level whose 2^j blocks
outgrow the cache (under the stream protocol; from cold caches every level reads main memory).
After the table, the benchmark fits gated_ms = a + b k at each batch size (R^2), and at batch 1
(stream protocol) also separately below and above that level, and prints the speed-up over the
same-parameter dense layer at batch 1 and k = 10.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import markdown_table
from xcs.gated.layer import GatedDense, GatedSpec, blocks_used
from xcs.sparsity.fanin import for_row_chunks
from xcs.system import machine_info

PHYSICS = ("Each example reads its own k + 1 blocks: at large batches the gated layer reads about as many weight "
           "bytes as a dense layer of equal parameters; its win is per-example computation and latency at small "
           "batches.")
TIMING = {
    "stream": ("Times are per batch: the median over round-robin calls, each running ~20 ms of fresh batches in one "
               "jitted loop. At batch 1 the time per level is higher for the levels whose 2^j blocks outgrow the "
               "processor's caches (their blocks come from main memory)."),
    "cold": ("Times are per batch: the median over round-robin calls of one fresh batch each, every call after the "
             "caches were cleared (a read of 4x the last-level cache), so every block comes from main memory; a "
             "time includes one dispatch from cold caches, the same at every depth."),
}
POOL_EXAMPLES = 4096  # distinct random examples per batch size; a call walks through them
PROTOCOLS = ("stream", "cold")
DEFAULT_CACHE_MB = 32.0  # for the evictor where sysfs does not say the cache's size


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


class StreamTimer:
    """Times apply(weights, x) per batch over fresh batches of a pool, in one jitted loop per call."""

    def __init__(self, apply: Callable, weights, pool: jax.Array, call_s: float, clock: str = "wall"):
        def many(weights, pool, start, n):
            def body(i, acc):
                x = jax.lax.dynamic_index_in_dim(pool, (start + i) % pool.shape[0], keepdims=False)
                return acc + jnp.sum(apply(weights, x))

            return jax.lax.fori_loop(0, n, body, jnp.zeros((), jnp.float32))

        self._fn, self._weights, self._pool, self._start = jax.jit(many), weights, pool, 0
        self._clock = CLOCKS[clock]
        self.n = 1
        self.call()  # compile (n is an argument: one compilation for every n)
        # Calibration: the call with n = 1 includes dispatch; the best of three longer calls
        # measures the work (a call that lost its core for a while is not the work).
        self.call_s = self.call()
        if self.call_s < call_s:  # a call of one batch that lasts call_s or more needs no calibration
            self.n = int(np.clip(round(call_s / self.call_s), 1, pool.shape[0]))
            best, n = min(self.call() for _ in range(3)), self.n
            self.n = int(np.clip(round(call_s * n / max(best, 1e-7)), 1, pool.shape[0]))
            self.call_s = best * self.n / n  # the expected length of a call from now on

    def call(self) -> float:
        """Seconds of one call: n batches, starting where the last call stopped in the pool."""
        start, self._start = self._start, (self._start + self.n) % self._pool.shape[0]
        t0 = self._clock()
        jax.block_until_ready(self._fn(self._weights, self._pool, start, self.n))
        return self._clock() - t0

    def per_batch_ms(self) -> float:
        return self.call() / self.n * 1e3


class CacheEvictor:
    """Clears the processor's caches of other data by reading a buffer several times the last-level cache."""

    def __init__(self, cache_mb: float, factor: float = 4.0):
        self._buffer = np.ones(max(1, int(factor * cache_mb * 2**20) // 4), np.float32)

    def __call__(self) -> None:
        # One float per 64-byte line: every line of the buffer passes through the caches, which
        # then hold it (and no longer the layer's weights, nor their page-table entries).
        self._buffer[::16].sum()


class ColdTimer:
    """Times apply(weights, x) on one fresh batch per call, each call after the caches were cleared.

    A call is one dispatch and one batch (its time includes the dispatch, the same at every
    depth); before it the evictor reads a large buffer, so every weight the call reads comes from
    main memory: the regime of a tree much larger than the cache, or of a server that does other
    work between queries, rather than that of a stream of queries sharing the cached top levels.
    """

    def __init__(self, apply: Callable, weights, pool: jax.Array, evict: Callable[[], None], clock: str = "wall"):
        def one(weights, pool, i):
            return apply(weights, jax.lax.dynamic_index_in_dim(pool, i, keepdims=False))

        self._fn = jax.jit(one)
        self._indices = [jnp.asarray(i, jnp.int32) for i in range(pool.shape[0])]  # no conversion in the timing
        self._weights, self._pool, self._evict, self._next = weights, pool, evict, 0
        self._clock = CLOCKS[clock]
        self.call()  # compile
        self.call_s = self.call()

    def call(self) -> float:
        """Seconds of one batch (the next of the pool), dispatch included, from cold caches."""
        i, self._next = self._indices[self._next], (self._next + 1) % len(self._indices)
        self._evict()
        t0 = self._clock()
        jax.block_until_ready(self._fn(self._weights, self._pool, i))
        return self._clock() - t0

    def per_batch_ms(self) -> float:
        return self.call() * 1e3


def _dense(w: jax.Array, x: jax.Array) -> jax.Array:
    return x @ w


def chunked_normal(key: jax.Array, shape: tuple[int, ...], std: float, chunk_mb: float = 256.0) -> jax.Array:
    """N(0, std^2) of `shape`, drawn chunk_mb MiB of rows at a time into one donated buffer.

    Drawing a whole array at once holds the random bits and their transforms beside it, 3-4x its
    size (a d = 512, k = 12 tree is 8 GiB); in chunks the peak is the array plus one chunk.
    """
    row_bytes = 4 * int(np.prod(shape[1:]))
    chunk = max(1, min(shape[0], int(chunk_mb * 2**20) // row_bytes))

    def fill(buffer):
        draw = lambda start: (std * jax.random.normal(jax.random.fold_in(key, start), (chunk, *shape[1:])),)
        return for_row_chunks(draw, shape[0], chunk, (buffer,))[0]

    return jax.jit(fill, donate_argnums=0)(jnp.zeros(shape, jnp.float32))


def gated_params(depth: int, dim: int) -> tuple[GatedDense, dict]:
    """The layer and its parameters: the kernel at the layer's own initial scale, drawn in chunks."""
    layer = GatedDense(dim, GatedSpec(kind="tree", depth=depth, gate_units="shared"))
    shapes = jax.eval_shape(layer.init, jax.random.PRNGKey(depth), jnp.zeros((1, dim), jnp.float32))["params"]
    std = 1.0 / np.sqrt(dim * blocks_used("tree", depth))  # as GatedDense's initialiser
    params = {"kernel": chunked_normal(jax.random.PRNGKey(depth), shapes["kernel"].shape, std),
              "bias": jnp.zeros(shapes["bias"].shape, jnp.float32)}
    return layer, {"params": params}


def measure_batch(batch: int, depths: list[int], gated: dict, dim: int, max_dense_mb: float, rounds: int,
                  call_s: float, clock: str = "wall", evict: CacheEvictor | None = None) -> list[dict]:
    """Rows of one batch size; `gated` maps depth -> (layer, params).

    Without `evict` the streaming protocol (StreamTimer), with it the cold one (ColdTimer).
    """
    rng = np.random.default_rng(batch)
    pool = jnp.asarray(rng.normal(size=(max(1, POOL_EXAMPLES // batch), batch, dim)), jnp.float32)

    def make_timer(apply: Callable, weights) -> StreamTimer | ColdTimer:
        if evict is not None:
            return ColdTimer(apply, weights, pool, evict, clock)
        return StreamTimer(apply, weights, pool, call_s, clock)

    rows = {k: dict(depth=k, batch=batch, params=(2 ** (k + 1) - 1) * dim * dim,
                    flops_per_example=2 * (k + 1) * dim * dim) for k in depths}
    timers = {}
    for k in depths:
        layer, params = gated[k]
        timers[k, "gated_ms"] = make_timer(layer.apply, params)
        w = jnp.asarray(rng.normal(size=(dim, (k + 1) * dim)) / np.sqrt(dim), jnp.float32)
        timers[k, "dense_same_flops_ms"] = make_timer(_dense, w)
    times = {key: [] for key in timers}
    for _ in range(rounds):
        for key, timer in timers.items():
            times[key].append(timer.per_batch_ms())
    for (k, name), ts in times.items():
        rows[k][name] = statistics.median(ts)
    for k in depths:
        rows[k]["dense_same_params_ms"] = None
        if rows[k]["params"] * 4 / 2**20 <= max_dense_mb:
            w = chunked_normal(jax.random.PRNGKey(1), (dim, (2 ** (k + 1) - 1) * dim), 1.0)
            dense = make_timer(_dense, w)
            repeats = int(np.clip(rounds * call_s / dense.call_s, 3, rounds))
            rows[k]["dense_same_params_ms"] = statistics.median(dense.per_batch_ms() for _ in range(repeats))
            del dense, w
    return [rows[k] for k in depths]


def _fit(k: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    """Least-squares t = a + b k: (a, b, R^2)."""
    slope, intercept = np.polyfit(k, t, 1)
    residual = t - (intercept + slope * k)
    r2 = 1.0 - float(residual @ residual) / max(float(((t - t.mean()) ** 2).sum()), 1e-30)
    return float(intercept), float(slope), r2


def linear_fits(rows: list[dict], split_depth: int | None = None) -> list[dict]:
    """Per batch size: least-squares gated_ms = a + b k over the measured depths, with R^2.

    With `split_depth`, batch 1 also gets a fit over depths <= split_depth and one over depths
    >= split_depth (the levels whose blocks stay in cache and those read from main memory).
    """
    fits = []
    for batch in sorted({r["batch"] for r in rows}):
        k = np.array([r["depth"] for r in rows if r["batch"] == batch], float)
        t = np.array([r["gated_ms"] for r in rows if r["batch"] == batch], float)
        parts = [np.ones_like(k, bool)]
        if batch == 1 and split_depth is not None:
            parts += [k <= split_depth, k >= split_depth]
        for part in parts:
            if part.sum() < 3:
                continue
            a, b, r2 = _fit(k[part], t[part])
            fits.append(dict(batch=batch, depths=f"{int(k[part].min())}-{int(k[part].max())}", intercept_ms=a,
                             ms_per_depth=b, r2=r2))
    return fits


def cache_depth(dim: int, cache_mb: float) -> int:
    """The deepest k whose whole tree of 2^{k+1} - 1 blocks of dim^2 floats fits in cache_mb."""
    blocks = cache_mb * 2**20 / (4 * dim * dim)
    return max(0, int(np.floor(np.log2(blocks + 1))) - 1)


def speedup_at(rows: list[dict], depth: int = 10, batch: int = 1) -> float | None:
    for r in rows:
        if r["depth"] == depth and r["batch"] == batch and r["dense_same_params_ms"] is not None:
            return r["dense_same_params_ms"] / r["gated_ms"]
    return None


def run(depths: list[int], batches: list[int], dim: int, max_dense_mb: float, rounds: int = 15,
        call_s: float = 0.02, cache_mb: float | None = None, clock: str = "wall", protocol: str = "stream") -> dict:
    """Rows and fits; protocol 'stream' (StreamTimer) or 'cold' (ColdTimer, caches cleared before each call)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: expected one of {PROTOCOLS}")
    if protocol == "cold" and jax.default_backend() != "cpu":
        # CacheEvictor reads host memory: an accelerator's own caches would stay warm.
        raise ValueError(f"protocol 'cold' clears the host processor's caches, not those of the "
                         f"{jax.default_backend()} device; use protocol 'stream' there")
    evict = CacheEvictor(cache_mb or DEFAULT_CACHE_MB) if protocol == "cold" else None
    gated = {k: gated_params(k, dim) for k in depths}  # built once, shared by the batch sizes
    rows = [r for b in batches
            for r in measure_batch(b, depths, gated, dim, max_dense_mb, rounds, call_s, clock, evict)]
    # From cold caches every level's blocks come from main memory: no cache level to split at.
    split = cache_depth(dim, cache_mb) if cache_mb and protocol == "stream" else None
    return dict(rows=rows, fits=linear_fits(rows, split), cache_depth=split, speedup_k10_b1=speedup_at(rows))


def last_level_cache_mb() -> float | None:
    """Size of the largest CPU cache (Linux sysfs), in MiB; None where unknown."""
    sizes = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    for entry in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, entry, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}.get(text[-1:], None)
        if scale:
            sizes.append(float(text[:-1]) * scale)
    return max(sizes) if sizes else None


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
    parser.add_argument("--protocol", choices=PROTOCOLS, default="stream",
                        help="stream: calls of ~--call-ms over fresh batches in one jitted loop (the top levels, "
                             "shared by all examples, stay in cache) | cold: one batch per call, each after the "
                             "caches were cleared (every block from main memory; the time includes one dispatch)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed calls per measurement (median); default 15 (stream), 301 (cold: one batch a call)")
    parser.add_argument("--call-ms", type=float, default=20.0, help="length of one timed call")
    parser.add_argument("--cache-mb", type=float, default=None,
                        help="last-level cache for the split fit at batch 1 (default: read from sysfs)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time (the convention; on a quiet machine) | process: CPU seconds of this "
                             "process, which leave out the waits for a core on a shared machine but count work "
                             "spread over several threads once per thread (batch-1 gated calls run on one)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (under a minute)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    if args.quick:
        depths, batches, dim, rounds, call_s = list(range(0, 7)), [1, 16], 64, 3, 0.002
    else:
        depths, batches, dim = _depths(args.depths), [int(b) for b in args.batches.split(",")], args.dim
        rounds, call_s = args.rounds or (301 if args.protocol == "cold" else 15), args.call_ms / 1e3
    cache_mb = args.cache_mb or last_level_cache_mb()
    t0 = time.perf_counter()
    result = run(depths, batches, dim, args.max_dense_mb, rounds, call_s, cache_mb, args.clock, args.protocol)
    print(f"tree-gated layer {dim} -> {dim}, protocol {args.protocol}. {PHYSICS} {TIMING[args.protocol]}\n")
    print(markdown_table(_significant(result["rows"])))
    where = (f"cache {cache_mb} MiB holds the whole tree up to k = {result['cache_depth']}"
             if result["cache_depth"] is not None else f"caches cleared before every call, cache {cache_mb} MiB")
    print(f"\nlinear fit of gated_ms on depth k ({where}):\n")
    print(markdown_table(_significant(result["fits"])))
    s = result["speedup_k10_b1"]
    print(f"\nbatch 1, k = 10: dense (same params) / gated = {s:.1f}x" if s else "\n(k = 10 at batch 1 not measured)")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": machine_info(), "dim": dim, "rounds": rounds, "call_ms": call_s * 1e3,
                       "clock": args.clock, "protocol": args.protocol, "cache_mb": cache_mb,
                       "note": f"{PHYSICS} {TIMING[args.protocol]}", **result}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
