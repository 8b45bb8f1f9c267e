"""The factored output layer's exact update vs the naive dense update of the same output layer.

  python -m experiments.benchmarks.factored --labels 10000,100000,1000000,3000000 --dims 128,256,512 \
      --batch 128 --out factored.json
  python -m experiments.benchmarks.factored --quick --out factored_quick.json

Per minibatch of B hidden vectors h [B, d] with K positives each: the naive step forms the
outputs [B, D], the squared-error loss, ∇h and the SGD update of the dense W [D, d] (jax.grad,
O(D·d·B)); the factored step (xcs.factored.layer.minibatch_update) computes the same loss, the
same ∇h and the same new W in O(B·d² + B·K·d). Both are jitted with their state donated, as in
training, and measured one after the other in this process. Rows: D, d, batch, factored_ms,
naive_ms, speedup (naive_ms / factored_ms), theory (D / 4d, the paper's estimate),
stabilize_ms (one call of the periodic stability check when U is in its band: an SVD of U),
peak_rss_mb (of the factored measurement, state included, init excluded), naive_peak_rss_mb and
vs_smallest_D (factored_ms over factored_ms at the smallest D of the same d: ≈ 1 when the step is
independent of D, i.e. V's rows are updated in place).

The issue's bars read off one run: at D = 1M, d = 128, speedup ≥ 100 and vs_smallest_D ≤ 1.5
(with 10000 among --labels). On a loaded machine, read ratios only, never absolute times.
"""

from __future__ import annotations

import argparse
import gc

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import median_ms, peak_rss_mb, reset_peak_rss, write_report
from xcs.factored import layer as factored
from xcs.losses import from_spherical
from xcs.spherical_losses import SPHERICAL_LOSSES

LR = 1e-4  # small enough that U stays in its band over the repeats


def _inputs(labels: int, dim: int, batch: int, positives: int):
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(batch, dim)) / np.sqrt(dim), jnp.float32)
    label_idx = jnp.asarray(rng.integers(0, labels, (batch, positives)), jnp.int32)
    return h, label_idx, jnp.ones((batch, positives), bool)


def measure_factored(labels: int, dim: int, batch: int, positives: int, repeats: int) -> dict:
    loss_fn = SPHERICAL_LOSSES["squared_error"]
    h, label_idx, label_mask = _inputs(labels, dim, batch, positives)
    state = jax.jit(factored.init, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), labels, dim, 1.0)
    jax.block_until_ready(state)
    reset_peak_rss()  # after init: the peak of training (state + step), not of drawing V
    step = jax.jit(lambda st, h, i, m: factored.minibatch_update(st, h, i, m, loss_fn, LR), donate_argnums=0)
    stabilize = jax.jit(lambda st: factored.stabilize(st)[0], donate_argnums=0)

    def run_step():
        nonlocal state
        state, loss, grad_h = step(state, h, label_idx, label_mask)
        jax.block_until_ready((loss, grad_h, state.V))

    def run_stabilize():
        nonlocal state
        state = jax.block_until_ready(stabilize(state))

    row = dict(factored_ms=median_ms(run_step, repeats), stabilize_ms=median_ms(run_stabilize, repeats),
               peak_rss_mb=peak_rss_mb())
    del state
    gc.collect()
    return row


def measure_naive(labels: int, dim: int, batch: int, positives: int, repeats: int) -> dict:
    dense_loss = from_spherical(SPHERICAL_LOSSES["squared_error"])
    h, label_idx, label_mask = _inputs(labels, dim, batch, positives)
    W = jax.jit(lambda k: jax.random.normal(k, (labels, dim)) / np.sqrt(dim))(jax.random.PRNGKey(0))
    jax.block_until_ready(W)
    reset_peak_rss()

    def step(W, h, label_idx, label_mask):
        def objective(W, h):
            return dense_loss(h @ W.T, label_idx, label_mask).sum()

        loss, (grad_w, grad_h) = jax.value_and_grad(objective, argnums=(0, 1))(W, h)
        return W - LR * grad_w, loss, grad_h

    step = jax.jit(step, donate_argnums=0)

    def run():
        nonlocal W
        W, loss, grad_h = step(W, h, label_idx, label_mask)
        jax.block_until_ready((W, loss, grad_h))

    row = dict(naive_ms=median_ms(run, repeats), naive_peak_rss_mb=peak_rss_mb())
    del W
    gc.collect()
    return row


def measure(labels: int, dim: int, batch: int, positives: int, repeats: int) -> dict:
    f = measure_factored(labels, dim, batch, positives, repeats)
    n = measure_naive(labels, dim, batch, positives, repeats)
    return dict(D=labels, d=dim, batch=batch, factored_ms=f["factored_ms"], naive_ms=n["naive_ms"],
                speedup=n["naive_ms"] / f["factored_ms"], theory=labels / (4 * dim), stabilize_ms=f["stabilize_ms"],
                peak_rss_mb=f["peak_rss_mb"], naive_peak_rss_mb=n["naive_peak_rss_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default="10000,100000,1000000,3000000", help="comma-separated D")
    parser.add_argument("--dims", default="128,256,512", help="comma-separated d")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--positives", type=int, default=4, help="K: positives per point")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (under a minute)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    if args.quick:
        labels, dims, batch, repeats = [2000, 20000], [16], 16, 3
    else:
        labels = [int(x) for x in args.labels.split(",")]
        dims = [int(x) for x in args.dims.split(",")]
        batch, repeats = args.batch, args.repeats
    rows = [measure(n, d, batch, args.positives, repeats) for d in dims for n in labels]
    for row in rows:  # the bar "time independent of D": each row against the smallest D of its d
        base = min((r for r in rows if r["d"] == row["d"]), key=lambda r: r["D"])
        row["vs_smallest_D"] = row["factored_ms"] / base["factored_ms"]
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
