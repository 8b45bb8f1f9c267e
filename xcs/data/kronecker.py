"""Kronecker-structured inputs: each point is x = f_0 ⊗ f_1 ⊗ ... (factors f_k ∈ R^{d_k}), never formed.

A split holds the factors as K arrays [N, d_k]; x has dimension d = Π d_k but only the factors are
stored, batched (`factor0`, `factor1`, ... [B, d_k]) and computed with (⟨x_i, x_j⟩ = Π_k ⟨f_ik, f_jk⟩,
wᵀx = contractions of W [m, d_0, d_1, ...] with each factor).

The synthetic generator draws each factor uniformly on its unit sphere (so ‖x‖ = 1, as the
analysis of Song & Ye 2023 assumes) and plants a target: a rank-`teacher_rank` multilinear teacher
per class, score_c(x) = R^{-1/2} Σ_j Π_k ⟨p_cjk, f_k⟩ with p ~ N(0, I) (unit variance per class).
Classification: class = argmax_c score_c (one label per point). Regression: y = score_0 + noise·N(0, 1).

User data: `{split}_factor0.npy`, `{split}_factor1.npy`, ... ([N, d_k] each) and `{split}_y.npy`
([N] ints = classes, or floats = regression targets) in one directory, split ∈ {train, test}.
"""

from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np

from xcs.core.errors import MissingInputError, UserError
from xcs.data.sparse import CSR

TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class KroneckerSpec:
    num_train: int = 4000  # training points
    num_test: int = 1000  # test points
    dims: tuple[int, ...] = (32, 32)  # d_k of each factor; x has d = Π d_k
    task: str = "classification"  # classification (argmax of the teacher's class scores) | regression (score 0)
    num_classes: int = 10  # classes of the classification task
    teacher_rank: int = 4  # R: rank-one terms per class of the planted multilinear teacher
    noise: float = 0.0  # classification: share of points with a random class; regression: std of added noise
    seed: int = 0  # the data's own seed

    def __post_init__(self) -> None:
        key = "config.data.kronecker"
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        if len(self.dims) < 2 or min(self.dims) < 1:
            raise UserError(f"{key}.dims={self.dims}: need at least two factors of dimension >= 1")
        if self.task not in TASKS:
            raise UserError(f"{key}.task={self.task!r}: expected one of {TASKS}")
        for name in ("num_classes", "teacher_rank"):
            if getattr(self, name) < 1:
                raise UserError(f"{key}.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_train", "num_test", "seed"):
            if getattr(self, name) < 0:
                raise UserError(f"{key}.{name} must be >= 0, got {getattr(self, name)}")
        if self.noise < 0 or (self.task == "classification" and self.noise > 1):
            raise UserError(f"{key}.noise={self.noise}: must be >= 0 (and <= 1 for classification)")


def unit_factors(rng: np.random.Generator, n: int, dims: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """K arrays [n, d_k], each row uniform on the unit sphere (so every x = ⊗ f_k has norm 1)."""
    out = []
    for d in dims:
        f = rng.standard_normal((n, d))
        out.append((f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)).astype(np.float32))
    return tuple(out)


def teacher_scores(spec: KroneckerSpec, factors: tuple[np.ndarray, ...]) -> np.ndarray:
    """The planted class scores [N, num_classes], computed factor by factor (cost N·C·R·Σ d_k)."""
    rng = np.random.default_rng([spec.seed, 0x7EAC])
    c, r = spec.num_classes, spec.teacher_rank
    prod = np.ones((factors[0].shape[0], c, r))
    for f, d in zip(factors, spec.dims):
        p = rng.standard_normal((c, r, d))
        prod *= np.einsum("nd,crd->ncr", f.astype(np.float64), p)
    return prod.sum(axis=2) / np.sqrt(r)


def generate_split(spec: KroneckerSpec, split: str) -> tuple[tuple[np.ndarray, ...], CSR | np.ndarray]:
    """(factors, targets): targets are labels (one class per row) or float32 regression targets [N]."""
    sizes = {"train": spec.num_train, "test": spec.num_test}
    if split not in sizes:
        raise ValueError(f"split must be one of {sorted(sizes)}, got {split!r}")
    n = sizes[split]
    rng = np.random.default_rng([spec.seed, zlib.crc32(split.encode())])
    factors = unit_factors(rng, n, spec.dims)
    scores = teacher_scores(spec, factors)
    if spec.task == "regression":
        return factors, (scores[:, 0] + spec.noise * rng.standard_normal(n)).astype(np.float32)
    y = np.argmax(scores, axis=1)
    noisy = rng.random(n) < spec.noise
    y[noisy] = rng.integers(0, spec.num_classes, int(noisy.sum()))
    return factors, class_labels(y, spec.num_classes)


def class_labels(y: np.ndarray, num_classes: int) -> CSR:
    n = len(y)
    return CSR(np.arange(n + 1, dtype=np.int64), y.astype(np.int32), np.ones(n, np.float32), num_classes)


def load_split(directory: str, split: str) -> tuple[tuple[np.ndarray, ...], CSR | np.ndarray]:
    """Reads `{split}_factor{k}.npy` (k = 0, 1, ...) and `{split}_y.npy` from `directory`.

    Integer targets are classes (labels CSR over max + 1 classes); float targets are returned as
    regression targets [N]. Every file is checked for shape and finiteness, naming the file.
    """
    factors = []
    while os.path.exists(path := os.path.join(directory, f"{split}_factor{len(factors)}.npy")):
        f = np.load(path, allow_pickle=False)
        if f.ndim != 2 or not np.issubdtype(f.dtype, np.number):
            raise UserError(f"{path}: expected a numeric [N, d] array, got dtype {f.dtype} shape {f.shape}")
        if not np.isfinite(f).all():
            raise UserError(f"{path}: contains NaN or inf")
        if factors and f.shape[0] != factors[0].shape[0]:
            raise UserError(f"{path}: {f.shape[0]} rows, but {split}_factor0.npy has {factors[0].shape[0]}")
        factors.append(f.astype(np.float32))
    if len(factors) < 2:
        raise MissingInputError(f"{directory}: need {split}_factor0.npy and {split}_factor1.npy (Kronecker factors); "
                                f"found {len(factors)} factor file(s)")
    path = os.path.join(directory, f"{split}_y.npy")
    if not os.path.exists(path):
        raise MissingInputError(f"{path}: missing targets of the {split} split")
    y = np.load(path, allow_pickle=False)
    if y.shape != (factors[0].shape[0],):
        raise UserError(f"{path}: expected shape ({factors[0].shape[0]},), got {y.shape}")
    if np.issubdtype(y.dtype, np.integer):
        if len(y) and y.min() < 0:
            raise UserError(f"{path}: class ids must be >= 0, found {int(y.min())}")
        return tuple(factors), class_labels(y, int(y.max(initial=-1)) + 1)
    if not np.isfinite(y).all():
        raise UserError(f"{path}: contains NaN or inf")
    return tuple(factors), y.astype(np.float32)


def factor_batch(factors: tuple[np.ndarray, ...], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The batch keys of Kronecker inputs: factor0, factor1, ... [B, d_k] float32."""
    return {f"factor{k}": np.asarray(f[rows], dtype=np.float32) for k, f in enumerate(factors)}


def batch_factors(batch: dict) -> list:
    """The factor arrays of a batch, in order (factor0, factor1, ...)."""
    out = []
    while f"factor{len(out)}" in batch:
        out.append(batch[f"factor{len(out)}"])
    if len(out) < 2:
        raise KeyError(f"a Kronecker model needs batch keys factor0, factor1, ...; got {sorted(batch)} "
                       "(set config.data.source='kronecker')")
    return out


def spec_from_config(config) -> KroneckerSpec:
    """The synthetic spec of `config.data.kronecker` (its `from_files` key is not a spec field)."""
    fields = config.kronecker.to_dict()
    fields.pop("from_files")
    return KroneckerSpec(**fields)


def load_pairs(config) -> tuple[list[tuple[tuple[np.ndarray, ...], CSR | np.ndarray]], str]:
    """([(train factors, targets), (test factors, targets)], location) of `config.data` (source kronecker).

    Generated from config.data.kronecker, or read from config.data.dir with from_files=True;
    targets are labels (CSR) or regression targets [N] float32. Train and test dimensions must agree.
    """
    from xcs.data.split import data_dir

    if config.kronecker.from_files:
        directory = data_dir(config)
        if not os.path.isdir(directory):
            raise MissingInputError(f"config.data.kronecker.from_files: directory {directory!r} does not exist "
                                    "(set XCS_DATA_DIR or --config.data.dir)")
        pairs = [load_split(directory, s) for s in ("train", "test")]
        location = os.path.abspath(directory)
    else:
        spec = spec_from_config(config)
        pairs = [generate_split(spec, s) for s in ("train", "test")]
        location = f"kronecker {spec}"
    dims = [tuple(f.shape[1] for f in factors) for factors, _ in pairs]
    if dims[0] != dims[1]:
        raise UserError(f"{location}: train factor dimensions {dims[0]} differ from test {dims[1]}")
    return pairs, location


def load_splits(config) -> tuple:
    """(train Split, test Split, location) for load_dataset with config.data.source='kronecker'.

    The xcs pipeline trains classifiers from labels; regression targets are for the paper's
    network (python -m experiments.kronecker_train), so they are refused here with that pointer.
    """
    from xcs.data.split import Split

    pairs, location = load_pairs(config)
    if any(not isinstance(targets, CSR) for _, targets in pairs):
        raise UserError("config.data.source='kronecker' with regression targets: the xcs pipeline (launch.py) "
                         "trains classifiers; use config.data.kronecker.task='classification' (integer y), or train "
                         "the regression network with `python -m experiments.kronecker_train`")
    return (*(Split(labels=labels, factors=factors) for factors, labels in pairs), location)
