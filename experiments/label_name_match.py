"""A label's name as a vector over the input features (experiments.label_names); no flags, so tests import it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from xcs.data.sparse import CSR
from xcs.data.tfidf import tokenize


def rows_unit(m: sp.csr_matrix) -> sp.csr_matrix:
    """`m` with each non-zero row scaled to unit L2 norm."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1))).ravel()
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m


def name_vectors(names: Sequence[str], vocabulary: Sequence[str], train_features: CSR) -> sp.csr_matrix:
    """[L, F] unit rows: idf of each label name's tokens that are features (a row of zeros where none is)."""
    index = {token: i for i, token in enumerate(vocabulary[: train_features.num_cols])}
    idf = np.log((1.0 + train_features.num_rows) / (1.0 + train_features.column_counts())) + 1.0
    rows, cols = [], []
    for label, name in enumerate(names):
        for feature in sorted({index[t] for t in tokenize(name) if t in index}):
            rows.append(label)
            cols.append(feature)
    vectors = sp.csr_matrix((idf[cols], (rows, cols)), shape=(len(names), train_features.num_cols))
    return rows_unit(vectors)
