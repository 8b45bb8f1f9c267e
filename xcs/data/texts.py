"""Raw texts of a data set's points: one text per line, in the order of the points.

Two layouts are understood, in the data directory of a data set:

- beside XC-repository files (`train.txt`, split files, `.npy`): `{split}_texts.txt` (what
  `python -m xcs.data.build wordnet_hypernyms --texts` writes) or the repository's raw-text `trn_X.txt` / `tst_X.txt`;
- texts + label names (AttentionXML's layout): `{split}_texts.txt` with `{split}_labels.txt`, one
  line of label names per point and no feature file; read by xcs.data.text_source, which also
  builds the tf-idf features.

A text file must have exactly one line per point (a file that ends without a newline is fine; an
empty line is an empty text). Lines are split on '\\n' only, so form feeds or Unicode line
separators inside a text stay in it.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR

TEXT_FILES = {"train": ("train_texts.txt", "trn_X.txt"), "test": ("test_texts.txt", "tst_X.txt")}


@dataclasses.dataclass(frozen=True)
class Tokens:
    """Tokenized texts: ids [N, max_len] int32 ([CLS] ... [SEP], then 0 = [PAD]) and lengths [N] int32."""

    ids: np.ndarray
    lengths: np.ndarray

    def take(self, rows: np.ndarray) -> Tokens:
        return Tokens(self.ids[rows], self.lengths[rows])


def find_text_file(directory: str, split: str) -> str:
    """The text file of `split` ('train' or 'test') in `directory`; FileNotFoundError names what was looked for."""
    if split not in TEXT_FILES:
        raise ValueError(f"split={split!r}: expected one of {sorted(TEXT_FILES)}")
    for name in TEXT_FILES[split]:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"no {split!r} texts in {directory}: looked for {' or '.join(TEXT_FILES[split])} (one text per line, "
        f"in the order of the {split} points; python -m xcs.data.build NAME --texts writes them)")


def read_lines(path: str) -> list[str]:
    """The lines of a UTF-8 file, split on '\\n' only ('\\r\\n' ends a line too); a final newline is optional."""
    with open(path, "rb") as f:  # FileNotFoundError names the path
        data = f.read()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    out = []
    for i, line in enumerate(lines):
        try:
            out.append(line.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataFormatError(path, i + 1, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return out


def read_texts(path: str, num_points: int | None = None) -> np.ndarray:
    """The texts of `path` as an object array of str; refuses a line count other than `num_points`."""
    texts = read_lines(path)
    if num_points is not None and len(texts) != num_points:
        raise DataFormatError(path, None, None,
                              f"{len(texts)} lines (texts) but the split has {num_points} points: a text file "
                              "needs exactly one line per point, in the same order")
    return np.array(texts, dtype=object)


def load_texts(directory: str, split: str, num_points: int) -> tuple[str, np.ndarray]:
    """(path, texts) of `split` in `directory`, checked against the split's point count."""
    path = find_text_file(directory, split)
    return path, read_texts(path, num_points)


def label_csr(rows: list[list[int]], num_labels: int) -> CSR:
    """Label sets as a CSR of ones: ids sorted within a row, repeats merged."""
    rows = [sorted(set(r)) for r in rows]
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter((i for r in rows for i in r), np.int32, count=int(indptr[-1]))
    return CSR(indptr, indices, np.ones(len(indices), np.float32), num_labels)
