"""The bias gradient of a wide layer: a column sum of g [B, L] as XLA's reduction and as ones @ g.

  python -m experiments.benchmarks.bias_grad --shapes 4096x1536,256x32768,256x100000,256x670000 --out F

Why xcs.nn.bias exists: XLA-CPU's column sum of a wide array is far slower than the same sum written as
a matrix-vector product. Rows: batch, width, sum0_ms (g.sum(0)), matvec_ms (ones[B] @ g), ratio.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.common import median_ms, shapes_main
from xcs.nn.bias import column_sum


def measure(batch: int, width: int, repeats: int) -> dict:
    g = jnp.asarray(np.random.default_rng(0).normal(size=(batch, width)), jnp.float32)
    reduction, matvec = jax.jit(lambda g: g.sum(0)), jax.jit(column_sum)
    np.testing.assert_allclose(reduction(g), matvec(g), rtol=1e-3, atol=1e-3)
    sum0 = median_ms(lambda: jax.block_until_ready(reduction(g)), repeats)
    mv = median_ms(lambda: jax.block_until_ready(matvec(g)), repeats)
    return dict(batch=batch, width=width, sum0_ms=sum0, matvec_ms=mv, ratio=sum0 / mv)


def main() -> None:
    shapes_main(__doc__, measure, "4096x1536,256x32768,256x100000,256x670000", "64x1000,64x5000", "BATCHxWIDTH")


if __name__ == "__main__":
    main()
