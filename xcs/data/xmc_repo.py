"""Readers for the Extreme Classification Repository's file formats.

Three layouts are understood (see `find_split_files`):

- single file: header `N F L`, then N lines `l1,l2,... f:v f:v ...` (0-based ids);
- split files: features `*_X_Xf.txt` and labels `*_X_Y.txt`, each a header `rows cols` followed by
  one line per row of `c:v c:v ...` (an empty line is an empty row);
- dense: features in a `.npy` [N, d] array, labels in a split-format file.

Parsing is vectorised: lines are grouped into chunks of a few MB, and each chunk is checked and
converted by numpy on its raw bytes. When anything in a chunk looks wrong the chunk is parsed
again line by line in plain Python, which is slow but finds the exact line and token to name in
the `DataFormatError`. Both paths give identical results on good input (tested).

Parsed arrays are cached beside the source as `<source>.<kind>.xcs-cache.npz`, stamped with the
source's size, mtime and `_FORMAT_VERSION`; a stale stamp rebuilds the cache.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from xcs.data.errors import DataFormatError
from xcs.data.npz_cache import cached, csr_arrays, csr_from
from xcs.data.sparse import CSR

# Bump when the parsed content for the same source bytes changes (it invalidates every cache).
_FORMAT_VERSION = 1
# Lines are parsed in chunks of about this many bytes: bounds the temporaries of the fast path
# (a few bytes of scratch per input byte) and the cost of re-parsing a bad chunk in Python.
_CHUNK_BYTES = 4 << 20
_MAX_COUNT = np.iinfo(np.int32).max  # ids are stored as int32
_F32_MAX = float(np.finfo(np.float32).max)

_WS = np.zeros(256, dtype=bool)
_WS[list(b" \t\r\n\v\f")] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[list(b"0123456789")] = True
_DIGIT_OR_COMMA = _DIGIT.copy()
_DIGIT_OR_COMMA[ord(",")] = True
_SPACE = np.uint8(ord(" "))


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
        (_, f, l_), body, newlines = _read_body(path, ("num_points", "num_features", "num_labels"))
        feats, labels = _parse_body(path, body, newlines, f, l_, with_labels=True, dedup=False)
        return {**csr_arrays("x", _to_csr(feats, f)), **csr_arrays("y", _to_csr(labels, l_))}

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


# ----------------------------------------------------------------------------------------------
# Reading the text and its header


def _read_body(path: str, names: tuple[str, ...]) -> tuple[tuple[int, ...], bytes, np.ndarray]:
    """Reads `path`: (header values, body bytes ending in a newline, positions of its newlines).

    The body holds exactly the header's row count of lines (names[0] is the row count); blank
    lines after them are ignored, anything else after them is an error.
    """
    with open(path, "rb") as f:  # FileNotFoundError names the path
        data = f.read()
    if not data.strip():
        raise DataFormatError(path, 1, None, "empty file: expected a header line")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    header, _, body = data.partition(b"\n")
    values = _parse_header(path, header, names)
    n = values[0]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    newlines = np.flatnonzero(np.frombuffer(body, np.uint8) == ord("\n"))
    if len(newlines) < n:
        raise DataFormatError(path, 1, str(n),
                              f"header declares {n} rows but the file has only {len(newlines)}")
    if len(newlines) > n:
        end = int(newlines[n - 1]) + 1 if n else 0
        extra = body[end:]
        if extra.strip():
            k = extra[: len(extra) - len(extra.lstrip())].count(b"\n")  # blank lines before it
            raise DataFormatError(path, n + 2 + k, _tok(extra.split()[0]),
                                  f"header declares {n} rows but the file has more lines")
        body, newlines = body[:end], newlines[:n]
    return values, body, newlines


def _tok(token: bytes, limit: int = 60) -> str:
    s = token.decode("utf-8", errors="replace")
    return s if len(s) <= limit else s[:limit] + "..."


def _parse_header(path: str, line: bytes, names: tuple[str, ...]) -> tuple[int, ...]:
    tokens = line.split()
    if len(tokens) != len(names):
        raise DataFormatError(path, 1, _tok(line),
                              f"header must be {len(names)} integers: {' '.join(names)}")
    out = []
    for i, (token, name) in enumerate(zip(tokens, names)):
        if not token.isdigit():
            raise DataFormatError(path, 1, _tok(token), f"header {name} is not a non-negative integer")
        value = int(token)
        if i > 0 and value > _MAX_COUNT:
            raise DataFormatError(path, 1, _tok(token), f"header {name} exceeds {_MAX_COUNT} (int32 ids)")
        out.append(value)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Parsing bodies: a fast vectorised path per chunk, and a line-by-line path that names errors

# A parsed sparse block: (per-row counts [n] int64, ids [nnz] int64, values [nnz] float64).
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray]


def _parse_body(path: str, body: bytes, newlines: np.ndarray, num_features: int, num_labels: int,
                with_labels: bool, dedup: bool) -> tuple[_Rows, _Rows | None]:
    """Parses the body into (features, labels or None); line 1 of the file is the header.

    `dedup` merges repeated ids in the `c:v` pairs (for a split-format file of label sets).
    """
    arr = np.frombuffer(body, np.uint8)
    feats, labels = [], []
    first = 0  # index of the chunk's first line in the body
    while first < len(newlines):
        lo = int(newlines[first - 1]) + 1 if first else 0
        last = max(first, int(np.searchsorted(newlines, lo + _CHUNK_BYTES)) - 1)  # chunk's last line
        hi = int(newlines[last]) + 1
        line_starts = np.concatenate([[0], newlines[first:last] + 1 - lo])
        parsed = _fast_chunk(arr[lo:hi], line_starts, num_features, num_labels, with_labels, dedup)
        if parsed is None:  # something is off: find it (and raise) line by line
            lines = body[lo:hi].split(b"\n")[:-1]
            parsed = _slow_chunk(path, lines, first + 2, num_features, num_labels, with_labels, dedup)
        feats.append(parsed[0])
        labels.append(parsed[1])
        first = last + 1
    return _concat_rows(feats), (_concat_rows(labels) if with_labels else None)


def _concat_rows(parts: list[_Rows]) -> _Rows:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]


def _fromstring(text: bytes, dtype: type, sep: str, count: int) -> np.ndarray | None:
    """np.fromstring that fails (None) unless it reads exactly `count` numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (DeprecationWarning) on unparsable text
        try:
            out = np.fromstring(text, dtype=dtype, sep=sep)
        except (ValueError, DeprecationWarning):
            return None
    return out if len(out) == count else None


def _span_positions(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """All positions in the half-open spans [starts[i], ends[i]), concatenated."""
    lengths = ends - starts
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()))


def _is_ws(arr: np.ndarray) -> np.ndarray:
    """What bytes.split() splits on: space and \\t\\n\\v\\f\\r (9..13)."""
    return (arr == 32) | (arr - np.uint8(9) <= 4)  # uint8 wraps below 9


def _fast_chunk(arr: np.ndarray, line_starts: np.ndarray, num_features: int, num_labels: int,
                with_labels: bool, dedup: bool) -> tuple[_Rows, _Rows | None] | None:
    """Parses whole lines (`arr` ends with a newline) with numpy; None if anything is off.

    Works on byte positions: a token is a maximal run of non-whitespace bytes; a line's label
    field is its first token when the line does not start with whitespace and the token has no
    ':'; every other token must be `digits:number`.
    """
    m = len(line_starts)
    ws = _is_ws(arr)
    colons = np.flatnonzero(arr == ord(":"))
    labels = None
    if with_labels:
        ws_pos = np.flatnonzero(ws)
        head_end = ws_pos[np.searchsorted(ws_pos, line_starts)]  # first whitespace of each line
        head_colon = np.searchsorted(colons, head_end) > np.searchsorted(colons, line_starts)
        is_label = (head_end > line_starts) & ~head_colon
        starts, ends = line_starts[is_label], head_end[is_label]
        label_pos = _span_positions(starts, ends)
        label_bytes = arr[label_pos]
        if not np.all(_DIGIT_OR_COMMA[label_bytes]):
            return None
        commas = np.flatnonzero(label_bytes == ord(","))
        spans_end = np.cumsum(ends - starts)
        per_line = np.searchsorted(commas, spans_end) - np.searchsorted(commas, spans_end - (ends - starts))
        counts = np.zeros(m, np.int64)
        counts[is_label] = per_line + 1
        text = np.full(len(arr), _SPACE)
        text[label_pos] = np.where(label_bytes == ord(","), _SPACE, label_bytes)
        ids = _fromstring(text.tobytes(), np.int64, " ", int(counts.sum()))
        if ids is None or (len(ids) and ids.max() >= num_labels):
            return None
        labels = _sort_rows(counts, ids, np.ones(len(ids), np.float64), dedup=True)
        ws = ws.copy()
        ws[label_pos] = True  # the features are the rest
    feats = _fast_pairs(arr, ws, colons, line_starts, num_features, dedup)
    return None if feats is None else (feats, labels)


def _fast_pairs(arr: np.ndarray, ws: np.ndarray, colons: np.ndarray, line_starts: np.ndarray,
                num_cols: int, dedup: bool) -> _Rows | None:
    """Parses the `id:value` tokens of the non-whitespace bytes of `arr`, line by line."""
    solid = ~ws
    starts = np.flatnonzero(solid[1:] & ws[:-1]) + 1
    if solid[0]:
        starts = np.concatenate([[0], starts])
    ends = np.flatnonzero(solid[:-1] & ws[1:]) + 1  # exclusive; arr ends with a newline
    total = len(starts)
    # One colon per token, neither its first nor its last byte: the t-th colon lies inside the t-th
    # token, for every t.
    if len(colons) != total or not (np.all(starts < colons) and np.all(colons + 1 < ends)):
        return None
    counts = np.bincount(np.searchsorted(line_starts, colons, side="right") - 1, minlength=len(line_starts))
    if total == 0:
        return counts.astype(np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    id_pos = _span_positions(starts, colons)
    id_bytes = arr[id_pos]
    if not np.all(id_bytes - np.uint8(48) <= 9):  # digits only: no sign, no '.', no exponent
        return None
    text = np.full(len(arr), _SPACE)
    text[id_pos] = id_bytes
    ids = _fromstring(text.tobytes(), np.int64, " ", total)
    text = np.where(solid, arr, _SPACE)
    text[id_pos] = _SPACE
    text[colons] = _SPACE
    vals = _fromstring(text.tobytes(), np.float64, " ", total)
    if ids is None or vals is None or ids.max() >= num_cols:
        return None
    if not np.all(np.abs(vals) <= _F32_MAX):  # also False for NaN
        return None
    return _sort_rows(counts.astype(np.int64), ids, vals, dedup)


def _sort_rows(counts: np.ndarray, ids: np.ndarray, vals: np.ndarray, dedup: bool) -> _Rows | None:
    """Sorts ids within rows; merges repeats if `dedup`, else returns None on a repeat."""
    if len(ids) < 2:
        return counts, ids, vals
    rows = np.repeat(np.arange(len(counts)), counts)
    same_row = rows[1:] == rows[:-1]
    if np.any(same_row & (ids[1:] <= ids[:-1])):
        order = np.lexsort((ids, rows))  # stable: among repeats the first in the file comes first
        rows, ids, vals = rows[order], ids[order], vals[order]
        repeat = same_row & (ids[1:] == ids[:-1])  # same_row is unchanged by a within-row sort
        if np.any(repeat):
            if not dedup:
                return None
            keep = np.concatenate([[True], ~repeat])
            rows, ids, vals = rows[keep], ids[keep], vals[keep]
            counts = np.bincount(rows, minlength=len(counts)).astype(np.int64)
    return counts, ids, vals


def _split_label_field(line: bytes) -> tuple[bytes, bytes]:
    """(labels, features) of a single-format line: labels are the first token unless it has ':'."""
    if not line or line[:1].isspace():
        return b"", line
    head, *rest = line.split(None, 1)
    if b":" in head:
        return b"", line
    return head, (rest[0] if rest else b"")


def _slow_chunk(path: str, lines: list[bytes], first_line: int, num_features: int, num_labels: int,
                with_labels: bool, dedup: bool) -> tuple[_Rows, _Rows | None]:
    """Line-by-line parse of a chunk: raises DataFormatError at the first problem."""
    f_counts, f_ids, f_vals, l_counts, l_ids = [], [], [], [], []
    for offset, line in enumerate(lines):
        lineno = first_line + offset
        if with_labels:
            label_field, rest = _split_label_field(line)
            labels = _slow_labels(path, lineno, label_field, num_labels)
            l_counts.append(len(labels))
            l_ids.extend(labels)
        else:
            rest = line
        pairs = _slow_pairs(path, lineno, rest, num_features, dedup)
        f_counts.append(len(pairs))
        f_ids.extend(p[0] for p in pairs)
        f_vals.extend(p[1] for p in pairs)
    feats = (np.array(f_counts, np.int64), np.array(f_ids, np.int64), np.array(f_vals, np.float64))
    if not with_labels:
        return feats, None
    n = len(l_ids)
    return feats, (np.array(l_counts, np.int64), np.array(l_ids, np.int64), np.ones(n, np.float64))


def _parse_id(path: str, lineno: int, token: bytes, shown: bytes, bound: int, what: str) -> int:
    if not token.isdigit():
        if token[:1] == b"-" and token[1:].isdigit():
            raise DataFormatError(path, lineno, _tok(shown), f"negative {what} id")
        raise DataFormatError(path, lineno, _tok(shown), f"{what} id is not a non-negative integer")
    value = int(token)
    if value >= bound:
        raise DataFormatError(path, lineno, _tok(shown),
                              f"{what} id {value} out of range: the header declares {bound} {what}s")
    return value


def _slow_labels(path: str, lineno: int, field: bytes, num_labels: int) -> list[int]:
    if not field:
        return []
    if b"," in field and not all(field.split(b",")):
        raise DataFormatError(path, lineno, _tok(field), "empty label id in the comma-separated label list")
    labels = {_parse_id(path, lineno, t, t, num_labels, "label") for t in field.split(b",")}
    return sorted(labels)


def _slow_pairs(path: str, lineno: int, text: bytes, num_cols: int, dedup: bool) -> list[tuple[int, float]]:
    pairs: dict[int, float] = {}
    for token in text.split():
        if token.count(b":") != 1:
            raise DataFormatError(path, lineno, _tok(token), "expected id:value")
        id_text, _, val_text = token.partition(b":")
        if not id_text or not val_text:
            raise DataFormatError(path, lineno, _tok(token), "expected id:value")
        i = _parse_id(path, lineno, id_text, token, num_cols, "feature" if not dedup else "label")
        try:
            if b"_" in val_text:
                raise ValueError
            v = float(val_text)
        except ValueError:
            raise DataFormatError(path, lineno, _tok(token), "value is not a number") from None
        if not math.isfinite(v) or abs(v) > _F32_MAX:
            raise DataFormatError(path, lineno, _tok(token), "value is not finite (in float32)")
        if i in pairs and not dedup:
            raise DataFormatError(path, lineno, _tok(token), f"id {i} appears twice in this row")
        pairs.setdefault(i, v)  # with dedup, the first value of a repeated id is kept
    return sorted(pairs.items())


# ----------------------------------------------------------------------------------------------
# Matrices, checks, and the cache


def _to_csr(rows: _Rows, num_cols: int) -> CSR:
    counts, ids, vals = rows
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSR(indptr, ids.astype(np.int32), vals.astype(np.float32), int(num_cols))


def _read_matrix(path: str, cache: bool, as_labels: bool) -> CSR:
    """A split-format file as a CSR; `as_labels` merges repeated ids and sets values to 1.0."""

    def build() -> dict[str, np.ndarray]:
        (_, cols), body, newlines = _read_body(path, ("rows", "cols"))
        (counts, ids, vals), _ = _parse_body(path, body, newlines, cols, 0, with_labels=False,
                                             dedup=as_labels)
        if as_labels:
            vals = np.ones_like(vals)
        return csr_arrays("x", _to_csr((counts, ids, vals), cols))

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
