"""Readers for the Extreme Classification Repository's file formats.

Three layouts are understood (see `find_split_files`):

- single file: header `N F L`, then N lines `l1,l2,... f:v f:v ...` (0-based ids);
- split files: features `*_X_Xf.txt` and labels `*_X_Y.txt`, each a header `rows cols` followed by
  one line per row of `c:v c:v ...` (an empty line is an empty row);
- dense: features in a `.npy` [N, d] array, labels in a split-format file.

Parsing (vectorised, with a line-by-line fallback that names the bad line and token) is in
xcs.data.xc_parse.

Parsed arrays are cached beside the source as `<source>.<kind>.xcs-cache.npz`, stamped with the
source's size, SHA-256 and `_FORMAT_VERSION`; a stale stamp rebuilds the cache.

`load_splits` reads train and test and refuses files of one data set that disagree (feature or
label counts, feature dimension), naming both files and the header line.
"""

from __future__ import annotations

import os

import numpy as np

from xcs.data.errors import DataFormatError
from xcs.data.npz_cache import cached, csr_arrays, csr_from
from xcs.data.sparse import CSR
from xcs.data.xc_parse import parse_body, read_body, to_csr

# Bump when the parsed content for the same source bytes changes (it invalidates every cache).
_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------
# Public API


def read_single_file(path: str, cache: bool = True) -> tuple[CSR, CSR]:
    """Reads the single-file format: header `N F L`, then N lines `l1,l2,... f:v f:v ...`.

    Returns (features [N, F] with float32 values, labels [N, L] with values 1.0). Ids are sorted
    within each row; repeated label ids in a row are merged (a label set is a set), a repeated
    feature id is an error (its value would be ambiguous). Points may have no labels (the line
    starts with whitespace or with a `f:v` token) or no features.
    """

    def build() -> dict[str, np.ndarray]:
        (_, f, l_), body, newlines = read_body(path, ("num_points", "num_features", "num_labels"))
        feats, labels = parse_body(path, body, newlines, f, l_, with_labels=True, dedup=False)
        return {**csr_arrays("x", to_csr(feats, f)), **csr_arrays("y", to_csr(labels, l_))}

    arrays = cached(path, "single", _FORMAT_VERSION, build) if cache else build()
    return csr_from("x", arrays), csr_from("y", arrays)


def read_sparse_matrix(path: str, cache: bool = True) -> CSR:
    """Reads one file of the split format: header `rows cols`, then one `c:v c:v ...` line per row.

    Indices are sorted within each row; a repeated column id in a row is an error.
    """
    return _read_matrix(path, cache, as_labels=False)


def read_split_files(features_path: str, labels_path: str, cache: bool = True) -> tuple[CSR, CSR]:
    """Reads a split-format pair (`*_X_Xf.txt`, `*_X_Y.txt`) as (features, labels).

    Label values in the file are ignored (labels are sets: values 1.0, repeats merged).
    """
    features = read_sparse_matrix(features_path, cache)
    labels = _read_matrix(labels_path, cache, as_labels=True)
    _check_rows_agree(labels_path, labels.num_rows, features_path, features.num_rows)
    return features, labels


def read_dense(npy_path: str, labels_path: str, cache: bool = True) -> tuple[np.ndarray, CSR]:
    """Reads dense float32 features [N, d] from `.npy` and labels from a split-format file.

    The array is memory-mapped when it is already float32 (so a large feature matrix costs no RAM
    until used); other float dtypes are converted in memory. Label values are ignored.
    """
    if not os.path.exists(npy_path):
        raise FileNotFoundError(f"no such file: {npy_path}")
    try:
        x = np.load(npy_path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DataFormatError(npy_path, None, None, f"not a readable .npy array: {e}") from e
    if x.ndim != 2:
        raise DataFormatError(npy_path, None, str(x.shape), "expected a 2-d [num_points, dim] array")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataFormatError(npy_path, None, str(x.dtype), "expected a numeric array")
    if x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float32)
    _check_finite_dense(npy_path, x)
    labels = _read_matrix(labels_path, cache, as_labels=True)
    _check_rows_agree(labels_path, labels.num_rows, npy_path, x.shape[0])
    return x, labels


_SPLIT_PREFIXES = {"train": ("train", "trn"), "test": ("test", "tst")}


def find_split_files(directory: str, split: str, format: str | None = None) -> dict:
    """Finds the files of `split` ('train' or 'test') in `directory` and their format.

    Returns {'format': 'single' | 'split' | 'dense', 'paths': [...]}, where paths are
    [file] for 'single', [features, labels] for 'split' and [npy, labels] for 'dense'. Names tried,
    in this order (the first match wins; pass `format` to choose when several are present):
    single `{split}.txt` (also `trn.txt`/`tst.txt`); split `{p}_X_Xf.txt` + `{p}_X_Y.txt`;
    dense `{p}_X.npy` + `{p}_X_Y.txt` or `{p}_Y.txt`; finally a lone `*_{split}.txt` (as in the
    repository's `eurlex_train.txt`), where p is trn/train for train and tst/test for test.
    """
    if format not in (None, "single", "split", "dense"):
        raise ValueError(f"format={format!r}: expected None, 'single', 'split' or 'dense'")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"data directory not found: {directory}")
    prefixes = _SPLIT_PREFIXES.get(split, (split,))
    candidates: list[tuple[str, list[str]]] = []
    candidates += [("single", [f"{p}.txt"]) for p in prefixes]
    candidates += [("split", [f"{p}_X_Xf.txt", f"{p}_X_Y.txt"]) for p in prefixes]
    candidates += [("dense", [f"{p}_X.npy", y]) for p in prefixes for y in (f"{p}_X_Y.txt", f"{p}_Y.txt")]

    def exists(name: str) -> bool:
        return os.path.isfile(os.path.join(directory, name))

    partial = []
    for fmt, names in candidates:
        if format not in (None, fmt):
            continue
        found = [exists(n) for n in names]
        if all(found):
            return {"format": fmt, "paths": [os.path.join(directory, n) for n in names]}
        if any(found):
            partial.append(f"found {names[found.index(True)]} but not {names[found.index(False)]}")
    looked_for = [" + ".join(names) for fmt, names in candidates if format in (None, fmt)]
    if format in (None, "single"):
        suffix = f"_{split}.txt"
        matches = sorted(n for n in os.listdir(directory) if n.endswith(suffix) and exists(n))
        if len(matches) == 1:
            return {"format": "single", "paths": [os.path.join(directory, matches[0])]}
        if len(matches) > 1:
            partial.append(f"several *{suffix} files ({', '.join(matches)}), cannot choose")
        looked_for.append(f"*{suffix}")
    detail = "; ".join(partial)
    raise FileNotFoundError(
        f"no {split!r} split found in {directory}: looked for {', '.join(looked_for)}"
        + (f" ({detail})" if detail else ""))


def load_split(directory: str, split: str, cache: bool = True, format: str | None = None
               ) -> tuple[CSR | np.ndarray, CSR]:
    """Loads `split` from `directory` in whichever format `find_split_files` finds there.

    Returns (features, labels): features are a CSR for the sparse formats and a float32 array
    [N, d] (possibly memory-mapped) for the dense one.
    """
    found = find_split_files(directory, split, format)
    paths = found["paths"]
    if found["format"] == "single":
        return read_single_file(paths[0], cache)
    if found["format"] == "split":
        return read_split_files(paths[0], paths[1], cache)
    return read_dense(paths[0], paths[1], cache)



def load_splits(directory: str, cache: bool = True, format: str | None = None
                ) -> tuple[tuple[CSR | np.ndarray, CSR], tuple[CSR | np.ndarray, CSR]]:
    """(train, test) of `directory`, each (features, labels) as `load_split` returns them.

    The two splits must declare the same number of features and of labels (a test file that
    declares more labels than the training file could only fail later, in the metrics).
    """
    found = {s: find_split_files(directory, s, format) for s in ("train", "test")}
    train, test = (load_split(directory, s, cache, format) for s in ("train", "test"))

    def cols(x: CSR | np.ndarray) -> int:
        return x.shape[1] if isinstance(x, np.ndarray) else x.num_cols

    (train_x_path, train_y_path), (test_x_path, test_y_path) = (
        (p["paths"][0], p["paths"][-1]) for p in (found["train"], found["test"]))
    checks = [("features", cols(train[0]), cols(test[0]), train_x_path, test_x_path),
              ("labels", train[1].num_cols, test[1].num_cols, train_y_path, test_y_path)]
    for split, (x, _), paths in (("train", train, found["train"]), ("test", test, found["test"])):
        rows = x.shape[0] if isinstance(x, np.ndarray) else x.num_rows
        if rows == 0:
            path = paths["paths"][0]
            raise DataFormatError(path, None if path.endswith(".npy") else 1, "0",
                                  f"header declares 0 rows: the {split} split of a data set needs points")
    for what, a, b, path_a, path_b in checks:
        if a != b:
            line = None if path_b.endswith(".npy") else 1
            raise DataFormatError(path_b, line, str(b), f"declares {b} {what} but {path_a} declares {a}: the "
                                  "files of one data set must agree")
    return train, test


def _read_matrix(path: str, cache: bool, as_labels: bool) -> CSR:
    """A split-format file as a CSR; `as_labels` merges repeated ids and sets values to 1.0."""

    def build() -> dict[str, np.ndarray]:
        (_, cols), body, newlines = read_body(path, ("rows", "cols"))
        (counts, ids, vals), _ = parse_body(path, body, newlines, cols, 0, with_labels=False,
                                             dedup=as_labels)
        if as_labels:
            vals = np.ones_like(vals)
        return csr_arrays("x", to_csr((counts, ids, vals), cols))

    kind = "labels" if as_labels else "sparse"
    return csr_from("x", cached(path, kind, _FORMAT_VERSION, build) if cache else build())


def _check_rows_agree(path: str, rows: int, other_path: str, other_rows: int) -> None:
    if rows != other_rows:
        raise DataFormatError(path, 1, str(rows),
                              f"{path} has {rows} rows but {other_path} has {other_rows}: they must agree")


def _check_finite_dense(path: str, x: np.ndarray, block_rows: int = 8192) -> None:
    """Raises on the first NaN/inf, scanning in blocks so a memory-mapped array stays unloaded."""
    for lo in range(0, x.shape[0], block_rows):
        block = np.asarray(x[lo:lo + block_rows])
        finite = np.isfinite(block)
        if not finite.all():
            r, c = np.argwhere(~finite)[0]
            raise DataFormatError(path, None, str(block[r, c]),
                                  f"non-finite feature value at (row {lo + r}, column {c})")
