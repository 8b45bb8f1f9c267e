"""Fixed-shape batches from CSR rows, and an epoch iterator that can restart at any step.

Every batch of a run has the same shapes (static shapes: one compilation per step function):
  feat_idx [B, F] int32, feat_val [B, F] float32  (padding: id 0 with value 0, adds nothing)
  label_idx [B, Y] int32, label_mask [B, Y] bool   (padding: id 0 with mask False)
or x [B, d] float32 for dense features, or factor0, factor1, ... [B, d_k] for Kronecker inputs, and for
texts token_ids / token_mask [B, T] int32 (T: see `token_width`). Rows longer than F or Y are
truncated, and how many were is counted once up front and reported by the training loop, never silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from xcs.data.kronecker import factor_batch
from xcs.data.sparse import CSR
from xcs.data.split import Split
from xcs.data.texts import Tokens


@dataclasses.dataclass(frozen=True)
class Truncation:
    """How many rows exceeded the batch width and how many entries that drops."""

    rows: int
    entries: int
    width: int


def truncation(csr: CSR, width: int) -> Truncation:
    lengths = csr.row_lengths()
    over = lengths > width
    return Truncation(int(over.sum()), int((lengths[over] - width).sum()), width)


def order_rows_by_value(csr: CSR) -> CSR:
    """Sorts each row by decreasing |value| so that truncation keeps the strongest entries."""
    row_of_entry = np.repeat(np.arange(csr.num_rows), csr.row_lengths())
    order = np.lexsort((-np.abs(csr.values), row_of_entry))
    return CSR(csr.indptr, csr.indices[order], csr.values[order], csr.num_cols)


def pad_rows(csr: CSR, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The given rows as [n, width] (indices, values, mask), keeping each row's first `width` entries."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = csr.indptr[rows]
    lengths = np.minimum(csr.indptr[rows + 1] - starts, width)
    total = int(lengths.sum())
    out_row = np.repeat(np.arange(len(rows)), lengths)
    out_col = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    src = np.repeat(starts, lengths) + out_col
    idx = np.zeros((len(rows), width), dtype=np.int32)
    val = np.zeros((len(rows), width), dtype=np.float32)
    mask = np.zeros((len(rows), width), dtype=bool)
    idx[out_row, out_col] = csr.indices[src]
    val[out_row, out_col] = csr.values[src]
    mask[out_row, out_col] = True
    return idx, val, mask


def token_width(max_len: int, longest: int, buckets: int) -> int:
    """Width of a token batch: the smallest of max_len, max_len/2, ... (`buckets` of them, each >= 8)
    that holds the batch's longest text. A few widths, so a few compilations, and short texts are not
    padded to max_len."""
    width = max_len
    for _ in range(buckets - 1):
        half = (width + 1) // 2
        if half < max(longest, 8):
            break
        width = half
    return width


def token_batch(tokens: Tokens, rows: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(token_ids, token_mask) [n, T] int32 of the given rows, T = token_width(...)."""
    lengths = tokens.lengths[rows]
    width = token_width(tokens.ids.shape[1], int(lengths.max(initial=0)), buckets)
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int32)
    return np.ascontiguousarray(tokens.ids[rows, :width]), mask


def batch_width(csr: CSR, cap: int) -> int:
    """The width of `csr`'s padded rows: its longest row's length, at most `cap` (0 = no cap), at least 1. A cap
    above the longest row would only pad every batch wider."""
    longest = int(csr.row_lengths().max(initial=0))
    return max(1, min(cap, longest) if cap else longest)


class Batcher:
    """Turns rows of a Split into fixed-shape batches."""

    def __init__(self, split: Split, max_features: int, max_labels: int, token_buckets: int = 1):
        self.split = split
        self.dense = split.dense is not None
        labels = split.labels
        self.label_width = batch_width(labels, max_labels)
        self.label_truncation = truncation(labels, self.label_width)
        self.features = None
        if split.features is not None:  # also beside x (text inputs embedding+sparse) or tokens
            feats = split.features
            self.feature_width = batch_width(feats, max_features)
            self.feature_truncation = truncation(feats, self.feature_width)
            self.features = order_rows_by_value(feats) if self.feature_truncation.rows else feats
        self.token_buckets = token_buckets

    def __call__(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        batch: dict[str, np.ndarray] = {}
        if self.dense:
            batch["x"] = np.asarray(self.split.dense[rows], dtype=np.float32)
        if self.split.factors is not None:
            batch.update(factor_batch(self.split.factors, rows))
        if self.features is not None:
            batch["feat_idx"], batch["feat_val"], _ = pad_rows(self.features, rows, self.feature_width)
        if self.split.tokens is not None:
            batch["token_ids"], batch["token_mask"] = token_batch(self.split.tokens, rows, self.token_buckets)
        batch["label_idx"], _, batch["label_mask"] = pad_rows(self.split.labels, rows, self.label_width)
        return batch

    def truncation_report(self) -> dict[str, dict[str, int]]:
        report = {"labels": dataclasses.asdict(self.label_truncation)}
        if self.features is not None:
            report["features"] = dataclasses.asdict(self.feature_truncation)
        return report


class EpochIterator:
    """Shuffled training batches; the batch of step s depends only on (seed, s).

    Each epoch is a fresh permutation drawn from (seed, epoch). An epoch has N // B steps (the
    remainder of a permutation is skipped; the next epoch reshuffles, so every point is seen).
    Restarting at step s therefore yields exactly the batches an uninterrupted run would.

    With `group_by_length` = G > 1 and token inputs, each run of G batches of the permutation is
    sorted by text length, cut into batches and those G batches shuffled: a batch holds texts of
    similar length, so it is padded to a narrower width (token_width), while the points still reach
    the model in a random order at the scale of G batches (the "megabatch" grouping of length-
    grouped samplers).
    """

    def __init__(self, batcher: Batcher, batch_size: int, seed: int, group_by_length: int = 0):
        self.batcher = batcher
        self.batch_size = batch_size
        self.seed = seed
        self.num_points = batcher.split.num_points
        self.steps_per_epoch = max(1, self.num_points // batch_size)
        tokens = batcher.split.tokens
        self.lengths = tokens.lengths if tokens is not None and group_by_length > 1 else None
        self.group_by_length = group_by_length
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def rows_for_step(self, step: int) -> np.ndarray:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            perm = rng.permutation(self.num_points)
            # A data set smaller than one batch is cycled to fill it.
            perm = np.resize(perm, max(len(perm), self.batch_size))
            if self.lengths is not None:
                perm = self._group_by_length(perm, rng)
            self._epoch, self._perm = epoch, perm
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def _group_by_length(self, perm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        used = self.steps_per_epoch * self.batch_size  # the epoch's batches; the rest is never read
        group = self.group_by_length * self.batch_size
        parts = []
        for start in range(0, used, group):
            rows = perm[start : min(start + group, used)]
            rows = rows[np.argsort(self.lengths[rows], kind="stable")]
            batches = rows.reshape(-1, self.batch_size)
            parts.append(batches[rng.permutation(len(batches))].reshape(-1))
        return np.concatenate(parts + [perm[used:]])

    def iterate(self, start_step: int, end_step: int) -> Iterator[dict[str, np.ndarray]]:
        for step in range(start_step, end_step):
            yield self.batcher(self.rows_for_step(step))


def eval_batches(batcher: Batcher, batch_size: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """All points in order, in batches of `batch_size` (the last one padded); yields (batch, valid)."""
    n = batcher.split.num_points
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        valid = len(rows)
        rows = np.concatenate([rows, np.zeros(batch_size - valid, dtype=rows.dtype)])
        yield batcher(rows), valid
