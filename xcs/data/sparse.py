"""Compressed sparse rows: the in-memory form of features and label sets.

Kept as three plain numpy arrays (no scipy dependency in library code) so that they pickle,
cache to `.npz` and slice cheaply. Label sets use the same container with `values` all ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class CSR:
    """Rows of (index, value) pairs: row i is indices[indptr[i]:indptr[i+1]]."""

    indptr: np.ndarray  # [N + 1] int64, non-decreasing, indptr[0] == 0
    indices: np.ndarray  # [nnz] int32, column ids
    values: np.ndarray  # [nnz] float32
    num_cols: int  # number of columns (features or labels)

    @property
    def num_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def take(self, rows: np.ndarray) -> CSR:
        """The sub-matrix of the given rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Positions of every kept entry, built without a Python loop over rows.
        offsets = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return CSR(indptr, self.indices[offsets], self.values[offsets], self.num_cols)

    def column_counts(self) -> np.ndarray:
        """How many rows hold each column (label frequencies for a label matrix)."""
        return np.bincount(self.indices, minlength=self.num_cols)

    def to_scipy(self):
        """The same matrix as a scipy.sparse.csr_matrix (for the peers and measurements; xcs itself does not use scipy)."""
        import scipy.sparse

        return scipy.sparse.csr_matrix((self.values, self.indices, self.indptr), shape=(self.num_rows, self.num_cols))

    def to_lists(self) -> list[list[int]]:
        return [self.indices[self.indptr[i] : self.indptr[i + 1]].tolist() for i in range(self.num_rows)]

    @staticmethod
    def from_lists(
        rows: list[list[int]], num_cols: int, values: list[list[float]] | None = None
    ) -> CSR:
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.fromiter((c for r in rows for c in r), dtype=np.int32, count=int(indptr[-1]))
        if values is None:
            vals = np.ones(len(indices), dtype=np.float32)
        else:
            vals = np.fromiter((v for r in values for v in r), dtype=np.float32, count=len(indices))
        return CSR(indptr, indices, vals, num_cols)

    def save_npz(self, path: str) -> None:
        np.savez(path, indptr=self.indptr, indices=self.indices, values=self.values,
                 num_cols=np.int64(self.num_cols))

    @staticmethod
    def load_npz(path: str) -> CSR:
        with np.load(path) as z:
            return CSR(z["indptr"], z["indices"], z["values"], int(z["num_cols"]))
