"""Text in, labels out: a data directory of raw texts and label names, featurised by xcs itself.

Layout of `$XCS_DATA_DIR/NAME/` (no feature file needed):

    train_texts.txt    one text per line
    train_labels.txt   the label names of the same point, on the same line, separated by
                       config.data.text.label_delimiter ('' = any whitespace, the AttentionXML layout)
    test_texts.txt     the same for test; optional: without them, hold out a part of train with
    test_labels.txt    --config.data.validation_fraction (the run then evaluates on it)

`python -m xcs.data.build NAME --format=texts` writes such a directory. `load_dataset` reads it for
`source=xmc_repo` (so `--config=configs/xmc.py:data=NAME` works) when the directory has no XC
feature file, or for the text encoders (config.data.text.inputs != none) in any case.

- Labels: a `LabelMap` of names; ids by first appearance, training labels before test-only ones.
  It is `Dataset.label_names`.
- Features (when the model reads sparse features: text.inputs none or embedding+sparse): the XC
  tf-idf recipe (xcs.data.tfidf.TfidfVectorizer), vocabulary and idf fitted on the training texts
  only, i.e. without the held-out validation part. The fitted vectorizer is `Dataset.vectorizer`.

`save_artifacts(dataset, directory)` keeps both as files (`label_names.txt`, one name per line, and
`tfidf.json`) and `load_artifacts(directory)` reads them back, so that prediction turns new texts
into features exactly as training did: `vectorizer.transform(texts)`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import ml_collections
import numpy as np

from xcs.core.errors import UserError
from xcs.data import texts as text_files
from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR
from xcs.data.split import Split
from xcs.data.tfidf import TfidfVectorizer

FILES = {"train": ("train_texts.txt", "train_labels.txt"), "test": ("test_texts.txt", "test_labels.txt")}
LABEL_NAMES_FILE = "label_names.txt"  # what save_artifacts writes
VECTORIZER_FILE = "tfidf.json"


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """Label names by id, and back."""

    names: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "_ids", {n: i for i, n in enumerate(self.names)})
        if len(self._ids) != len(self.names):
            raise ValueError("label names repeat")

    def __len__(self) -> int:
        return len(self.names)

    def id(self, name: str) -> int:
        return self._ids[name]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[str]]) -> LabelMap:
        """Ids by first appearance in `rows`."""
        ids: dict[str, None] = {}
        for row in rows:
            ids.update(dict.fromkeys(row))
        return cls(tuple(ids))

    def encode(self, rows: Sequence[Sequence[str]]) -> CSR:
        """Rows of names as a label CSR (ids sorted, repeats merged); KeyError on an unknown name."""
        return text_files.label_csr([[self._ids[n] for n in row] for row in rows], len(self.names))

    def save(self, path: str) -> None:
        """One name per line (the format of labels.txt beside XC files)."""
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(n + "\n" for n in self.names)

    @classmethod
    def load(cls, path: str) -> LabelMap:
        return cls(tuple(text_files.read_lines(path)))


def split_names(line: str, delimiter: str) -> list[str]:
    """The label names on one line: split on `delimiter` ('' = whitespace), stripped, empty ones dropped."""
    if not delimiter:
        return line.split()
    return [n.strip() for n in line.split(delimiter) if n.strip()]


def has_texts_and_names(directory: str) -> bool:
    """True when `directory` holds train_texts.txt and train_labels.txt."""
    return all(os.path.isfile(os.path.join(directory, f)) for f in FILES["train"])


def has_feature_files(directory: str) -> bool:
    """True when `directory` holds the training split in an XC format (xcs.data.xmc_repo)."""
    from xcs.data import xmc_repo

    try:
        xmc_repo.find_split_files(directory, "train")
    except FileNotFoundError:
        return False
    return True


def read_split(directory: str, split: str, delimiter: str) -> tuple[np.ndarray, list[list[str]]] | None:
    """(texts, label-name rows) of `split`, or None when neither of its two files exists."""
    paths = [os.path.join(directory, f) for f in FILES[split]]
    present = [os.path.isfile(p) for p in paths]
    if not any(present):
        return None
    if not all(present):
        have, lack = (FILES[split][present.index(v)] for v in (True, False))
        raise UserError(f"{directory}: {have} without {lack} (texts and label names come in pairs, one line per "
                        "point in each)")
    names = [split_names(line, delimiter) for line in text_files.read_lines(paths[1])]
    texts = text_files.read_lines(paths[0])
    if len(texts) != len(names):
        raise DataFormatError(paths[1], None, None, f"{len(names)} lines (label names) but {FILES[split][0]} has "
                              f"{len(texts)}: one line per point in both, in the same order")
    return np.array(texts, dtype=object), names


def load_splits(directory: str, delimiter: str, held_out: bool) -> tuple[Split, Split, LabelMap]:
    """(train, test, label map) with labels and texts, no features. Without test files, `held_out` must
    be True (validation_fraction > 0): the test split is then empty and load_dataset replaces it."""
    train = read_split(directory, "train", delimiter)
    if train is None:
        raise FileNotFoundError(f"no {' + '.join(FILES['train'])} in {directory}")
    test = read_split(directory, "test", delimiter)
    if test is None:
        if not held_out:
            raise UserError(f"{directory}: no {' + '.join(FILES['test'])}; add them, or hold out a part of train "
                            "with --config.data.validation_fraction=0.1")
        test = (np.array([], dtype=object), [])
    label_map = LabelMap.from_rows([*train[1], *test[1]])
    if not len(label_map):
        raise DataFormatError(os.path.join(directory, FILES["train"][1]), None, None, "no label names at all")
    return (Split(labels=label_map.encode(train[1]), texts=train[0]),
            Split(labels=label_map.encode(test[1]), texts=test[0]), label_map)


def add_tfidf(train: Split, test: Split, text: ml_collections.ConfigDict,
              fit_rows: np.ndarray | None = None) -> tuple[Split, Split, TfidfVectorizer]:
    """Both splits with tf-idf features from a vectorizer fitted on train's texts (rows `fit_rows` only:
    the part that stays training data when a validation part is held out)."""
    fit_texts = train.texts if fit_rows is None else train.texts[fit_rows]
    vectorizer = TfidfVectorizer.fit(fit_texts, text.tfidf_min_df, text.tfidf_max_features)
    if not vectorizer.num_features:
        raise UserError(f"no token occurs in {text.tfidf_min_df} or more training texts: nothing to learn from "
                        "(lower config.data.text.tfidf_min_df)")
    return (dataclasses.replace(train, features=vectorizer.transform(train.texts)),
            dataclasses.replace(test, features=vectorizer.transform(test.texts)), vectorizer)


def save_artifacts(dataset, directory: str) -> list[str]:
    """Writes the dataset's label names (label_names.txt) and fitted vectorizer (tfidf.json) to `directory`,
    those it has; returns the paths written."""
    written = []
    if dataset.label_names is not None:
        written.append(os.path.join(directory, LABEL_NAMES_FILE))
        LabelMap(tuple(dataset.label_names)).save(written[-1])
    if dataset.vectorizer is not None:
        written.append(os.path.join(directory, VECTORIZER_FILE))
        dataset.vectorizer.save(written[-1])
    return written


def load_artifacts(directory: str) -> tuple[tuple[str, ...] | None, TfidfVectorizer | None]:
    """(label names, vectorizer) saved by save_artifacts in `directory`; None for a file that is not there."""
    names_path, vec_path = (os.path.join(directory, f) for f in (LABEL_NAMES_FILE, VECTORIZER_FILE))
    names = LabelMap.load(names_path).names if os.path.isfile(names_path) else None
    return names, TfidfVectorizer.load(vec_path) if os.path.isfile(vec_path) else None


def read_vocabulary(directory: str, num_features: int) -> tuple[str, ...] | None:
    """vocab.txt beside XC files (feature id -> token, one a line, as xcs.data.build writes), or None without one."""
    path = os.path.join(directory, "vocab.txt")
    if not os.path.isfile(path):
        return None
    tokens = tuple(text_files.read_lines(path))
    if len(tokens) > num_features:
        raise DataFormatError(path, num_features + 1, tokens[num_features],
                              f"{len(tokens)} tokens but the data set has {num_features} features "
                              "(vocab.txt: one token per feature id, in id order)")
    return tokens


def read_label_names(directory: str, num_labels: int) -> tuple[str, ...] | None:
    """labels.txt beside XC files (label id -> name, one a line, as xcs.data.build writes), or None without one."""
    path = os.path.join(directory, "labels.txt")
    if not os.path.isfile(path):
        return None
    names = tuple(text_files.read_lines(path))
    if len(names) != num_labels:
        raise DataFormatError(path, None, None, f"{len(names)} label names but the data set has {num_labels} labels "
                              "(labels.txt: one name per label id, in id order)")
    first_line: dict[str, int] = {}
    for line, name in enumerate(names, start=1):
        if name in first_line:  # a prediction names its labels, so each name must stand for one id
            raise DataFormatError(path, line, name, f"this label name is also on line {first_line[name]}; "
                                  "each label needs its own name")
        first_line[name] = line
    return names
