"""A data set in memory: train and test splits of (features, labels), and where on-disk sets live."""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from xcs.data.sparse import CSR
from xcs.data.texts import Tokens
from xcs.data.tfidf import TfidfVectorizer


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: labels plus either sparse features (CSR), dense features [N, d] or Kronecker factors."""

    labels: CSR
    features: CSR | None = None
    dense: np.ndarray | None = None
    factors: tuple[np.ndarray, ...] | None = None  # x = factors[0][i] ⊗ factors[1][i] ⊗ ... (xcs.data.kronecker)
    texts: np.ndarray | None = None  # [N] object array of str: the raw texts (config.data.text, xcs.data.texts)
    tokens: Tokens | None = None  # the texts tokenized, for an encoder trained end to end (xcs.data.text_inputs)

    @property
    def num_points(self) -> int:
        return self.labels.num_rows

    def take(self, rows: np.ndarray) -> Split:
        return Split(
            labels=self.labels.take(rows),
            features=None if self.features is None else self.features.take(rows),
            dense=None if self.dense is None else np.asarray(self.dense[rows]),
            factors=None if self.factors is None else tuple(np.asarray(f[rows]) for f in self.factors),
            texts=None if self.texts is None else self.texts[rows],
            tokens=None if self.tokens is None else self.tokens.take(rows),
        )


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    num_features: int  # feature vocabulary (sparse) or dimension (dense)
    num_labels: int
    location: str  # where it came from, for results.json
    label_names: tuple[str, ...] | None = None  # label id -> name (texts + label names, or labels.txt), else None
    vectorizer: TfidfVectorizer | None = None  # tf-idf fitted on the training texts (xcs.data.text_source), else None
    vocabulary: tuple[str, ...] | None = None  # feature id -> token (vocab.txt, or the vectorizer's), else None

    @property
    def dense(self) -> bool:
        return self.train.dense is not None

    def stats(self) -> dict[str, float | int]:
        out: dict[str, float | int] = dict(num_features=self.num_features, num_labels=self.num_labels)
        for name, split in (("train", self.train), ("test", self.test)):
            lab = split.labels.row_lengths()
            out[f"{name}_points"] = split.num_points
            out[f"{name}_labels_per_point"] = round(float(lab.mean()), 3) if len(lab) else 0.0
            out[f"{name}_points_without_labels"] = int((lab == 0).sum())
            if split.features is not None:
                out[f"{name}_points_without_features"] = int((split.features.row_lengths() == 0).sum())
        return out


def data_dir(config: ml_collections.ConfigDict) -> str:
    """The directory of an on-disk data set: data.dir, else $XCS_DATA_DIR/<data.name>."""
    return config.dir or os.path.join(os.environ.get("XCS_DATA_DIR", "data"), config.name)
