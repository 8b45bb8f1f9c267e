"""The region task: a synthetic classification problem whose target function differs by region.

x ~ N(0, I_dim). The signs of the first `region_bits` coordinates put x in one of 2^region_bits
regions (orthants of those coordinates), and each region r has its own random linear classifier
A_r [dim, num_classes]: the class of x is argmax_c (x A_r)_c. One label per point, so P@1 is the
accuracy. A model needs capacity per region (2^region_bits different linear maps, switched by
sign patterns), which is what conditional computation offers at the cost of one region's
computation; a dense network of equal computation has to share its weights across all regions.
With `label_noise` > 0 that share of points gets a uniformly random class instead.

Train and test come from the same distribution through different random streams; the output is
a pure function of (spec, split).
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from xcs.core.errors import UserError
from xcs.data.sparse import CSR


@dataclasses.dataclass(frozen=True)
class RegionSpec:
    num_train: int = 20000  # training points
    num_test: int = 5000  # test points
    dim: int = 32  # dimension of x
    region_bits: int = 6  # the signs of x[:region_bits] pick one of 2^region_bits regions
    num_classes: int = 10  # classes (labels)
    label_noise: float = 0.0  # share of points whose class is replaced by a uniformly random one
    seed: int = 0  # the data's own seed (the classifiers and the points derive from it)

    def __post_init__(self) -> None:
        key = "config.data.region"
        for name in ("dim", "num_classes"):
            if getattr(self, name) < 1:
                raise UserError(f"{key}.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_train", "num_test", "region_bits", "seed"):
            if getattr(self, name) < 0:
                raise UserError(f"{key}.{name} must be >= 0, got {getattr(self, name)}")
        if self.region_bits > min(self.dim, 20):
            raise UserError(f"{key}.region_bits={self.region_bits} must be <= min(dim={self.dim}, 20)")
        if not 0.0 <= self.label_noise <= 1.0:
            raise UserError(f"{key}.label_noise={self.label_noise} must be in [0, 1]")


def region_of(x: np.ndarray, region_bits: int) -> np.ndarray:
    """Region id [N] of points [N, dim]: the sign bits of x[:, :region_bits], first bit highest."""
    weights = 2 ** np.arange(region_bits - 1, -1, -1)
    return ((x[:, :region_bits] > 0).astype(np.int64) * weights).sum(axis=1)


def classifiers(spec: RegionSpec) -> np.ndarray:
    """The per-region linear classifiers [2^region_bits, dim, num_classes]."""
    rng = np.random.default_rng([spec.seed, 0x12E6])
    return rng.standard_normal((2**spec.region_bits, spec.dim, spec.num_classes))


def generate_split(spec: RegionSpec, split: str) -> tuple[np.ndarray, CSR]:
    """(dense features [N, dim] float32, labels [N, num_classes] with one label per row)."""
    sizes = {"train": spec.num_train, "test": spec.num_test}
    if split not in sizes:
        raise ValueError(f"split must be one of {sorted(sizes)}, got {split!r}")
    n = sizes[split]
    rng = np.random.default_rng([spec.seed, zlib.crc32(split.encode())])
    x = rng.standard_normal((n, spec.dim))
    a = classifiers(spec)
    regions = region_of(x, spec.region_bits)
    # Points are grouped by region so that each region's classifier is applied once.
    y = np.empty(n, dtype=np.int64)
    for r in np.unique(regions):
        rows = regions == r
        y[rows] = np.argmax(x[rows] @ a[r], axis=1)
    noisy = rng.random(n) < spec.label_noise
    y[noisy] = rng.integers(0, spec.num_classes, int(noisy.sum()))
    labels = CSR(np.arange(n + 1, dtype=np.int64), y.astype(np.int32), np.ones(n, np.float32), spec.num_classes)
    return x.astype(np.float32), labels
