"""The bias gradient of a wide layer: a column sum of g [B, L] as XLA's reduction and as ones @ g.

  python -m experiments.benchmarks.bias_grad --shapes 4096x1536,256x32768,256x100000,256x670000 --out F

Why xcs.nn.bias exists: XLA-CPU's column sum of a wide array is far slower than the same sum written as
a matrix-vector product. Rows: batch, width, sum0_ms (g.sum(0)), matvec_ms (ones[B] @ g), ratio.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import median_ms, write_report
from xcs.nn.bias import column_sum


def measure(batch: int, width: int, repeats: int) -> dict:
    g = jnp.asarray(np.random.default_rng(0).normal(size=(batch, width)), jnp.float32)
    reduction, matvec = jax.jit(lambda g: g.sum(0)), jax.jit(column_sum)
    np.testing.assert_allclose(reduction(g), matvec(g), rtol=1e-3, atol=1e-3)
    sum0 = median_ms(lambda: jax.block_until_ready(reduction(g)), repeats)
    mv = median_ms(lambda: jax.block_until_ready(matvec(g)), repeats)
    return dict(batch=batch, width=width, sum0_ms=sum0, matvec_ms=mv, ratio=sum0 / mv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="4096x1536,256x32768,256x100000,256x670000",
                        help="comma-separated BATCHxWIDTH")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    shapes = "64x1000,64x5000" if args.quick else args.shapes
    rows = [measure(*map(int, s.split("x")), repeats=2 if args.quick else args.repeats) for s in shapes.split(",")]
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
