"""The tf-idf vectorizer of the XC data sets, fitted on a training split and kept as a file.

The recipe (what the Extreme Classification Repository's bag-of-words sets and
`python -m xcs.data.build` use):

- tokens: the text lower-cased, split on every character that is not a letter or a digit
  (`str.isalnum`; on ASCII text exactly `[a-z0-9]+`, and words of other scripts stay whole), tokens
  of >= 2 characters kept (no stemming, no stop words: the idf down-weights function words);
- vocabulary: tokens in >= `min_df` training texts, the `max_features` of highest document
  frequency (ties by token); feature ids by decreasing document frequency, then token;
- idf = ln((1 + N) / (1 + df)) + 1 (smooth idf; N training texts);
- tf = 1 + ln(count) (sublinear); value = tf * idf; each row L2-normalised (an empty row stays empty).

Usage::

    vec = TfidfVectorizer.fit(train_texts, min_df=2)
    x = vec.transform(texts)          # CSR [len(texts), vec.num_features], float32, ids sorted per row
    vec.save("tfidf.json")            # plain JSON: settings, vocabulary, idf
    same = TfidfVectorizer.load("tfidf.json")   # transforms new texts exactly as `vec` does

Values are computed in float64 in a fixed order (`row`), so that `xcs.data.build` writes the same
digits for the same texts on every machine; `transform` rounds them to float32.
"""

from __future__ import annotations

import collections
import json
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR

TOKEN_PATTERN = r"[^\W_]+"  # letters and digits (str.isalnum): [a-z0-9]+ on lower-cased ASCII
MIN_TOKEN_LEN = 2
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_FORMAT = "xcs-tfidf"
_VERSION = 1


def tokenize(text: str) -> list[str]:
    """Lower-case `text`, split on every character that is not a letter or digit, keep tokens of >= 2 characters."""
    return [t for t in _TOKEN_RE.findall(text.lower()) if len(t) >= MIN_TOKEN_LEN]


class TfidfVectorizer:
    """A fitted vocabulary and idf; `fit` builds one from training texts, `load` reads a saved one."""

    def __init__(self, vocabulary: Sequence[str], idf: Sequence[float], *, min_df: int, max_features: int,
                 num_fit_texts: int):
        if len(vocabulary) != len(idf):
            raise ValueError(f"vocabulary has {len(vocabulary)} tokens but idf {len(idf)} values")
        self.vocabulary = tuple(vocabulary)  # feature id -> token
        self.idf = tuple(float(v) for v in idf)  # feature id -> idf (Python floats: exact through JSON)
        self.min_df, self.max_features, self.num_fit_texts = min_df, max_features, num_fit_texts
        self._ids = {t: j for j, t in enumerate(self.vocabulary)}
        if len(self._ids) != len(self.vocabulary):
            raise ValueError("vocabulary has repeated tokens")

    @property
    def num_features(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def fit(cls, texts: Iterable[str], min_df: int = 2, max_features: int = 0) -> TfidfVectorizer:
        """Vocabulary and idf of `texts` (the training split only); max_features 0 = no limit."""
        if min_df < 1 or max_features < 0:
            raise ValueError(f"min_df={min_df} must be >= 1 and max_features={max_features} >= 0")
        df: collections.Counter[str] = collections.Counter()
        n = 0
        for text in texts:
            df.update(set(tokenize(text)))
            n += 1
        vocab = sorted((t for t, c in df.items() if c >= min_df), key=lambda t: (-df[t], t))
        if max_features:
            vocab = vocab[:max_features]
        idf = [math.log((1 + n) / (1 + df[t])) + 1.0 for t in vocab]
        return cls(vocab, idf, min_df=min_df, max_features=max_features, num_fit_texts=n)

    def row(self, text: str) -> list[tuple[int, float]]:
        """The float64 (feature id, value) pairs of one text, ids ascending."""
        counts: dict[int, int] = {}
        for token in tokenize(text):
            j = self._ids.get(token)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        feats = [(j, (1.0 + math.log(c)) * self.idf[j]) for j, c in counts.items()]  # first-appearance order
        norm = math.sqrt(sum(v * v for _, v in feats)) or 1.0
        return sorted((j, v / norm) for j, v in feats)

    def transform(self, texts: Iterable[str]) -> CSR:
        """tf-idf rows of `texts`: CSR [N, num_features], float32 values, ids sorted within a row."""
        lengths, indices, values = [0], [], []
        for text in texts:
            pairs = self.row(text)
            lengths.append(len(pairs))
            indices.extend(j for j, _ in pairs)
            values.extend(v for _, v in pairs)
        return CSR(np.cumsum(lengths, dtype=np.int64), np.array(indices, np.int32), np.array(values, np.float32),
                   self.num_features)

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "version": _VERSION, "token_pattern": TOKEN_PATTERN, "lowercase": True,
                "min_token_len": MIN_TOKEN_LEN, "tf": "1+ln(count)", "idf": "ln((1+N)/(1+df))+1", "norm": "l2",
                "min_df": self.min_df, "max_features": self.max_features, "num_fit_texts": self.num_fit_texts,
                "vocabulary": list(self.vocabulary), "idf_values": list(self.idf)}

    def save(self, path: str) -> None:
        """Writes the vectorizer as JSON (floats written exactly: `load` gives the same values)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)
            f.write("\n")

    @classmethod
    def load(cls, path: str) -> TfidfVectorizer:
        with open(path, encoding="utf-8") as f:  # FileNotFoundError names the path
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, e.lineno, None, f"not JSON ({e.msg})") from None
        if not isinstance(d, dict) or d.get("format") != _FORMAT or d.get("version") != _VERSION:
            raise DataFormatError(path, None, None, f"not an {_FORMAT} file of version {_VERSION}")
        if d["token_pattern"] != TOKEN_PATTERN or d["min_token_len"] != MIN_TOKEN_LEN:
            raise DataFormatError(path, None, None, "saved with another tokenizer than this version's")
        return cls(d["vocabulary"], d["idf_values"], min_df=d["min_df"], max_features=d["max_features"],
                   num_fit_texts=d["num_fit_texts"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TfidfVectorizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"TfidfVectorizer({self.num_features} features, min_df={self.min_df}, "
                f"max_features={self.max_features}, fitted on {self.num_fit_texts} texts)")
