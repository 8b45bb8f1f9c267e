"""Inputs to predict on, from files or from memory, as a Split of the model's inputs; bad ones refused.

Files (`read_file`), the forms the data layer reads for training, labels optional and ignored:

- XC single file: header `N F L`, then `l1,l2,... f:v f:v ...` per point (a line may have no labels);
- XC features file of the split format (`*_X_Xf.txt`): header `N F`, then `f:v f:v ...` per point;
- `.npy`: dense features [N, d] (for a model that reads x: dense data, or precomputed text embeddings);
- texts: one text per line, for a model with a text path (tf-idf with the vectorizer fitted in training,
  the text encoders).

An input that does not fit the model (a feature id >= the model's F, a text file for a model without
a text path, an empty file, a dense width other than the model's) is a UserError naming file and line.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from xcs.core.errors import MissingInputError, UserError
from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR
from xcs.data.split import Split

Predictor = Any  # xcs.predict.predictor.Predictor (not imported: it imports this module)

FORMATS = ("auto", "xc", "npy", "texts")


def sniff(path: str) -> str:
    """'npy', 'xc' (the first line is a header of 2 or 3 integers) or 'texts'."""
    if path.endswith(".npy"):
        return "npy"
    with open(path, "rb") as f:
        first = f.readline(4096).split()
    return "xc" if len(first) in (2, 3) and all(t.isdigit() for t in first) else "texts"


def read_file(predictor: Predictor, path: str, fmt: str = "auto") -> Split:
    """The points of the file at `path` as a Split of the model's inputs."""
    if fmt not in FORMATS:
        raise UserError(f"input format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not os.path.isfile(path):
        raise MissingInputError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise DataFormatError(path, 1, None, "empty file: no points to predict")
    fmt = sniff(path) if fmt == "auto" else fmt
    if fmt == "npy":
        return _dense_split(predictor, _read_npy(path), path)
    if fmt == "texts":
        from xcs.data.texts import read_lines

        lines = read_lines(path)
        if not lines:
            raise DataFormatError(path, 1, None, "empty file: no points to predict")
        return texts_split(predictor, np.array(lines, dtype=object), path)
    return _sparse_split(predictor, _read_xc(path), path, first_line=2)


def _read_xc(path: str) -> CSR:
    from xcs.data import xmc_repo

    with open(path, "rb") as f:
        header = f.readline().split()
    if len(header) == 3:
        features, _ = xmc_repo.read_single_file(path, cache=False)  # the labels, if any, are not needed
    elif len(header) == 2:
        features = xmc_repo.read_sparse_matrix(path, cache=False)
    else:
        raise DataFormatError(path, 1, b" ".join(header).decode("utf-8", "replace")[:60],
                              "header must be `N F L` (XC single file) or `N F` (XC features file)")
    if features.num_rows == 0:
        raise DataFormatError(path, 1, None, "the header declares 0 points: nothing to predict")
    return features


def _read_npy(path: str) -> np.ndarray:
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DataFormatError(path, None, None, f"not a readable .npy array: {e}") from None
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataFormatError(path, None, f"{x.dtype}{list(x.shape)}", "expected a 2-d numeric [points, dim] array")
    if x.shape[0] == 0:
        raise DataFormatError(path, None, None, "no rows: nothing to predict")
    return x


def _no_labels(num_points: int, num_labels: int) -> CSR:
    return CSR(np.zeros(num_points + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32), num_labels)


def _check_reads(predictor: Predictor, name: str, have: set[str], what: str) -> None:
    """Refuses inputs that lack a part the model reads (have: some of sparse, dense, tokens)."""
    need = {k for k, reads in (("sparse", predictor.reads_sparse), ("dense", predictor.reads_dense),
                                ("tokens", predictor.reads_tokens)) if reads}
    if predictor.reads_factors:
        raise UserError(f"{name}: this model reads Kronecker factor pairs (config.model.encoder.name="
                        f"{predictor.config.model.encoder.name!r}); prediction on new inputs reads sparse or dense "
                        "features and texts only")
    if not need <= have:
        raise DataFormatError(name, 1 if os.path.isfile(name) else None, None,
                              f"{what}, but this model reads {predictor.describe_inputs()}")


def _sparse_split(predictor: Predictor, features: CSR, name: str, first_line: int | None = None) -> Split:
    """Sparse features checked against the model's F; `first_line`: the file line of row 0 (else rows are named)."""
    _check_reads(predictor, name, {"sparse"}, "sparse features")
    f = predictor.num_features
    bad = np.flatnonzero((features.indices >= f) | (features.indices < 0))
    if len(bad):
        entry = int(bad[0])
        row = int(np.searchsorted(features.indptr, entry, side="right")) - 1
        token = f"{features.indices[entry]}:{features.values[entry]:g}"
        reason = f"feature id {features.indices[entry]} is not below the model's {f} features"
        if first_line is None:
            raise UserError(f"{name} row {row}: {reason} (entry {token})")
        raise DataFormatError(name, first_line + row, token, reason)
    if not np.all(np.isfinite(features.values)):
        entry = int(np.flatnonzero(~np.isfinite(features.values))[0])
        row = int(np.searchsorted(features.indptr, entry, side="right")) - 1
        raise UserError(f"{name} row {row}: feature value {features.values[entry]} is not finite")
    features = CSR(features.indptr, features.indices, features.values, f)
    return Split(labels=_no_labels(features.num_rows, predictor.num_labels), features=features)


def _dense_split(predictor: Predictor, x: np.ndarray, name: str) -> Split:
    if not predictor.reads_dense and predictor.reads_sparse and not predictor.reads_tokens:
        if x.shape[1] > predictor.num_features:
            raise UserError(f"{name}: {x.shape[1]} columns, but this model reads {predictor.describe_inputs()}")
        return _sparse_split(predictor, dense_to_csr(np.asarray(x, np.float32)), name)
    if predictor.reads_dense and x.shape[1] != predictor.dense_dim:
        raise UserError(f"{name}: dense features of width {x.shape[1]}, but this model reads "
                        f"{predictor.describe_inputs()}")
    _check_reads(predictor, name, {"dense"}, f"dense features of width {x.shape[1]}")
    x = np.asarray(x, np.float32)
    if not np.all(np.isfinite(x)):
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise UserError(f"{name}: non-finite feature value at (row {r}, column {c})")
    return Split(labels=_no_labels(x.shape[0], predictor.num_labels), dense=x)


def texts_split(predictor: Predictor, texts: np.ndarray, name: str) -> Split:
    """Texts turned into the model's inputs as in training: tf-idf, frozen embeddings or token ids."""
    text = predictor.config.data.text
    if predictor.text_path is None:
        if predictor.reads_sparse and text.inputs == "embedding+sparse":
            why = ("its sparse features came from XC files beside the texts, and xcs.predict cannot make them "
                   "from texts")
        else:
            why = ("it has no text path (no tf-idf vectorizer in its workdir, config.data.text.inputs="
                   f"{text.inputs!r}); give its features in the XC format")
        raise DataFormatError(name, 1 if os.path.isfile(name) else None, None,
                              f"a text file (one text per line), but this model reads "
                              f"{predictor.describe_inputs()}: {why}")
    split = Split(labels=_no_labels(len(texts), predictor.num_labels), texts=texts)
    if predictor.vectorizer is not None and text.inputs in ("none", "embedding+sparse"):
        split = dataclasses.replace(split, features=predictor.vectorizer.transform(texts))
    if text.inputs != "none":
        from xcs.data.text_inputs import add_text_inputs

        split = add_text_inputs(text, split, None)  # no cache file beside the user's input
    return split


def dense_to_csr(x: np.ndarray) -> CSR:
    rows, cols = np.nonzero(x)
    indptr = np.zeros(x.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=indptr[1:])
    return CSR(indptr, cols.astype(np.int32), x[rows, cols].astype(np.float32), x.shape[1])


def rows_to_csr(rows: list, num_cols: int, name: str) -> CSR:
    """Rows of (feature ids, values) as a CSR, ids sorted within a row; a repeated id is refused."""
    lengths, indices, values = [], [], []
    for r, row in enumerate(rows):
        try:
            ids, vals = row
            ids, vals = np.asarray(ids, np.int64).reshape(-1), np.asarray(vals, np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise UserError(f"{name} row {r}: expected a pair (feature ids, values)") from None
        if len(ids) != len(vals):
            raise UserError(f"{name} row {r}: {len(ids)} feature ids but {len(vals)} values")
        order = np.argsort(ids, kind="stable")
        ids, vals = ids[order], vals[order]
        if len(ids) > 1 and np.any(ids[1:] == ids[:-1]):
            raise UserError(f"{name} row {r}: feature id {ids[1:][ids[1:] == ids[:-1]][0]} appears twice")
        lengths.append(len(ids))
        indices.append(ids)
        values.append(vals)
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    idx = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() > np.iinfo(np.int32).max):
        idx = np.clip(idx, -1, np.iinfo(np.int32).max)  # refused by the range check that follows
    return CSR(indptr, idx.astype(np.int32), np.concatenate(values) if values else np.zeros(0, np.float32),
               num_cols)


def _sorted_csr(indptr, indices, values, num_cols: int) -> CSR:
    """A CSR from (possibly unsorted) rows, ids sorted within each row."""
    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices, np.int64)
    values = np.asarray(values, np.float32)
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((indices, rows))
    return CSR(indptr, indices[order].astype(np.int32), values[order], int(num_cols))


def to_split(predictor: Predictor, inputs: Any, name: str = "input") -> Split:
    """In-memory inputs (see Predictor.predict) as a Split of the model's inputs."""
    if isinstance(inputs, Split):
        return inputs
    if isinstance(inputs, CSR):
        if inputs.num_rows == 0:
            raise UserError(f"{name}: no points")
        return _sparse_split(predictor, _sorted_csr(inputs.indptr, inputs.indices, inputs.values, inputs.num_cols),
                             name)
    if all(hasattr(inputs, a) for a in ("indptr", "indices", "data", "shape")):  # scipy.sparse CSR
        if inputs.shape[0] == 0:
            raise UserError(f"{name}: no points")
        return _sparse_split(predictor, _sorted_csr(inputs.indptr, inputs.indices, inputs.data, inputs.shape[1]),
                             name)
    if isinstance(inputs, str):
        raise UserError(f"{name}: a single string; give a list of texts (one per point)")
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "biuf":
        if inputs.ndim != 2 or inputs.shape[0] == 0:
            raise UserError(f"{name}: a dense array must be [points, dim] with at least one point, not "
                            f"{list(inputs.shape)}")
        return _dense_split(predictor, inputs, name)
    rows = list(inputs)
    if not rows:
        raise UserError(f"{name}: no points")
    if all(isinstance(r, str | np.str_) for r in rows):
        return texts_split(predictor, np.array(rows, dtype=object), name)
    return _sparse_split(predictor, rows_to_csr(rows, predictor.num_features, name), name)
