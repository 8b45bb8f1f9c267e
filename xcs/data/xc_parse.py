"""Parsing the XC repository's text formats: header, then rows of `id:value` pairs (and labels).

Vectorised: lines are grouped into chunks of a few MB, and each chunk is checked and converted by
numpy on its raw bytes. When anything in a chunk looks wrong the chunk is parsed again line by line
in plain Python, which is slow but finds the exact line and token to name in the `DataFormatError`.
Both paths give identical results on good input (tested). The readers are in xcs.data.xmc_repo.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR

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
# Reading the text and its header


def read_body(path: str, names: tuple[str, ...]) -> tuple[tuple[int, ...], bytes, np.ndarray]:
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
            blank = _first_blank_line(body[:end])
            if blank is not None:  # most likely the cause: name it rather than the last line
                raise DataFormatError(path, blank + 2, None, f"blank line inside the data: the header declares {n} "
                                      "rows and the file has more lines (remove the blank line, or fix the header)")
            k = extra[: len(extra) - len(extra.lstrip())].count(b"\n")  # blank lines before it
            raise DataFormatError(path, n + 2 + k, _tok(extra.split()[0]),
                                  f"header declares {n} rows but the file has more lines")
        body, newlines = body[:end], newlines[:n]
    return values, body, newlines


def _first_blank_line(body: bytes) -> int | None:
    """0-based index of the first line of `body` holding only whitespace, or None."""
    if re.match(rb"[ \t\v\f]*\n", body):
        return 0
    match = re.search(rb"\n[ \t\v\f]*\n", body)
    return None if match is None else body.count(b"\n", 0, match.start()) + 1


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


def parse_body(path: str, body: bytes, newlines: np.ndarray, num_features: int, num_labels: int,
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


def to_csr(rows: _Rows, num_cols: int) -> CSR:
    counts, ids, vals = rows
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSR(indptr, ids.astype(np.int32), vals.astype(np.float32), int(num_cols))
