"""Time per SGD iteration of the paper's network (Song & Ye 2023) on Kronecker inputs: dense, primal, structured.

  python -m experiments.benchmarks.kronecker [--log2d 10,12,14,16,18,20] [--n 10000] [--m 1024] [--batch 256]
      [--max-dense-mb 2048] [--quick] --out kronecker.json

f(W, x) = m^{-1/2} Σ_r a_r σ_b(w_rᵀx) on x = u ⊗ v, u ∈ R^{d1}, v ∈ R^{d2} (d1 = 2^⌈k/2⌉, d2 = 2^⌊k/2⌋ for
d = 2^k), unit-norm factors, W(0) ~ N(0, 1), shift b = sqrt(0.4 ln m) (the paper's choice; --shift).
One iteration = one SGD step on a batch (xcs.kronecker.layer), jitted, state donated:

  dense       W [m, d] on the formed batch x [B, d] (x built from the factors inside the step: the
              n × d matrix of all formed points would not fit at large d): O(B·m·d).
  primal      W [m, d1, d2] by two factor contractions, never forming x: still O(B·m·d).
  structured  pre-activations P [m, n] and coefficients C [m, n]: Gram rows of the batch from the
              factors, O(B·n·(d1 + d2)), and P += ΔC·G, O(m·B·n) dense (ΔC is non-zero only for
              active (neuron, point) pairs: active_frac); nothing d-dimensional.
  structured+gram  the same with the n × n Gram matrix precomputed once (a lookup per step: O(B·n)
              + O(m·B·n), flat in d; n² floats of memory).

The one-off initial projections P(0) = W(0)ᵀx_j (cost m·n·d, by factor contractions) are not part
of the iteration; the benchmark starts the structured state from P ~ N(0, 1), the distribution of
w_r(0)ᵀx for unit x, so the active fraction is the real one. dense and primal run while W fits in
--max-dense-mb; above that their rows are extrapolated linearly in d from the largest measured d
(their cost is B·m·d) and marked `extrapolated`. Rows: repr, d, d1, d2, n, m, batch, iter_ms
(median after a compile and warm-up step), peak_rss_mb (VmHWM during the row), active_frac,
extrapolated. After the table: the speed-up of structured over dense at the largest d, and
structured's iter_ms at the largest d over its iter_ms at d = 2^14 (flatness).
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import median_ms, peak_rss_mb, reset_peak_rss, write_report
from xcs.data.kronecker import unit_factors
from xcs.kronecker import layer as km

REPRS = ("dense", "primal", "structured", "structured+gram")


def _dims(log2d: int) -> tuple[int, int]:
    return 2 ** ((log2d + 1) // 2), 2 ** (log2d // 2)


def _timed(step, state, args_of, repeats: int) -> tuple[float, float]:
    """(median ms, mean active_frac or nan) of state = step(state, *args_of(i)), state donated."""
    box = {"state": state, "i": 0, "active": []}

    def once():
        box["state"], metric = step(box["state"], *args_of(box["i"]))
        box["i"] += 1
        jax.block_until_ready(box["state"])
        if metric is not None:
            box["active"].append(float(metric))

    ms = median_ms(once, repeats=repeats, warmup=2)
    return ms, float(np.mean(box["active"])) if box["active"] else float("nan")


def measure(rep: str, log2d: int, n: int, m: int, batch: int, shift: float, repeats: int, seed: int = 0) -> dict:
    d1, d2 = _dims(log2d)
    rng = np.random.default_rng(seed)
    train = [jnp.asarray(f) for f in unit_factors(rng, n, (d1, d2))]
    y = jnp.asarray(rng.standard_normal(n), jnp.float32)
    w_key, a_key = jax.random.split(jax.random.PRNGKey(seed))
    a = jnp.where(jax.random.bernoulli(a_key, 0.5, (m,)), 1.0, -1.0).astype(jnp.float32)
    batches = [jnp.asarray(rng.choice(n, batch, replace=False), jnp.int32) for _ in range(repeats + 3)]
    lr = 0.1
    reset_peak_rss()
    if rep.startswith("structured"):
        state = km.structured_from_projections(jax.random.normal(w_key, (m, n), jnp.float32))
        gram = km.gram_rows(train, train) if rep == "structured+gram" else None

        def step(state, rows, train, y, a, gram):
            state, metrics = km.structured_step(state, rows, y[rows], train, a, shift, lr, gram)
            return state, metrics["active_frac"]

        fn = jax.jit(step, donate_argnums=0)
        ms, active = _timed(fn, state, lambda i: (batches[i], train, y, a, gram), repeats)
    else:
        shape = (m, d1 * d2) if rep == "dense" else (m, d1, d2)
        w = jax.random.normal(w_key, shape, jnp.float32)

        def step(w, rows, train, y, a):
            factors = [f[rows] for f in train]
            if rep == "dense":
                return km.dense_step(w, a, shift, km.formed_x(factors), y[rows], lr)[0], None
            return km.primal_step(w, a, shift, factors, y[rows], lr)[0], None

        fn = jax.jit(step, donate_argnums=0)
        ms, active = _timed(fn, w, lambda i: (batches[i], train, y, a), repeats)
    return dict(repr=rep, d=d1 * d2, d1=d1, d2=d2, n=n, m=m, batch=batch, iter_ms=ms, peak_rss_mb=peak_rss_mb(),
                active_frac=None if math.isnan(active) else active, extrapolated=False)


def run(log2ds: list[int], n: int, m: int, batch: int, shift: float, max_dense_mb: float, repeats: int,
        reprs: tuple[str, ...] = REPRS) -> list[dict]:
    rows = []
    for log2d in log2ds:
        for rep in reprs:
            if rep in ("dense", "primal") and m * 2**log2d * 4 / 2**20 > max_dense_mb:
                rows.append(_extrapolated(rows, rep, log2d, n, m, batch))
                continue
            rows.append(measure(rep, log2d, n, m, batch, shift, repeats))
            print(f"  {rows[-1]['repr']:<16} d=2^{log2d:<3} {rows[-1]['iter_ms']:.2f} ms", flush=True)
    return rows


def _extrapolated(rows: list[dict], rep: str, log2d: int, n: int, m: int, batch: int) -> dict:
    """iter_ms ∝ d from the largest measured d of `rep` (its cost is B·m·d); None if none was measured."""
    measured = [r for r in rows if r["repr"] == rep and not r["extrapolated"]]
    d1, d2 = _dims(log2d)
    ms = measured[-1]["iter_ms"] * (d1 * d2) / measured[-1]["d"] if measured else None
    return dict(repr=rep, d=d1 * d2, d1=d1, d2=d2, n=n, m=m, batch=batch, iter_ms=ms, peak_rss_mb=None,
                active_frac=None, extrapolated=True)


def summary(rows: list[dict]) -> dict:
    """Speed-up of structured over dense at the largest d, and structured's growth from d = 2^14 (or the smallest)."""
    by = {(r["repr"], r["d"]): r for r in rows}
    d_max = max(r["d"] for r in rows)
    out = {}
    dense, struct = by.get(("dense", d_max)), by.get(("structured", d_max))
    if dense and struct and dense["iter_ms"]:
        out["d"] = d_max
        out["dense_over_structured"] = dense["iter_ms"] / struct["iter_ms"]
        out["dense_extrapolated"] = dense["extrapolated"]
    for rep in ("structured", "structured+gram"):
        ds = sorted(d for (r, d) in by if r == rep)
        if len(ds) > 1:
            base = 2**14 if 2**14 in ds else ds[0]
            out[f"{rep}_growth_from_d={base}"] = by[(rep, d_max)]["iter_ms"] / by[(rep, base)]["iter_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log2d", default="10,12,14,16,18,20", help="exponents k of d = 2^k")
    parser.add_argument("--n", type=int, default=10_000, help="training points")
    parser.add_argument("--m", type=int, default=1024, help="neurons")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--shift", type=float, default=None, help="b of the shifted ReLU (default sqrt(0.4 ln m))")
    parser.add_argument("--reprs", default=",".join(REPRS))
    parser.add_argument("--max-dense-mb", type=float, default=2048.0, help="largest W of dense/primal measured")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (under a minute)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    if args.quick:
        args.log2d, args.n, args.m, args.batch, args.repeats, args.max_dense_mb = "6,8,10", 500, 64, 32, 3, 0.1
    reprs = tuple(args.reprs.split(","))
    for rep in reprs:
        if rep not in REPRS:
            parser.error(f"--reprs: {rep!r} is not one of {REPRS}")
    shift = args.shift if args.shift is not None else math.sqrt(0.4 * math.log(args.m))
    rows = run([int(k) for k in args.log2d.split(",")], args.n, args.m, args.batch, shift, args.max_dense_mb,
               args.repeats, reprs)
    print(f"\nSGD iteration of the two-layer network, m={args.m}, n={args.n}, batch {args.batch}, b={shift:.3g}")
    write_report(rows, args.out)
    result = summary(rows)
    print(result)
    if args.out:  # the summary joins the conventional {"machine", "rows"}
        with open(args.out) as f:
            report = json.load(f)
        with open(args.out, "w") as f:
            json.dump({**report, "summary": result}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
