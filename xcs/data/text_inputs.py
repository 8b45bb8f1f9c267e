"""What a model reads of the texts (config.data.text): frozen sentence embeddings, or token ids.

- `embedding`: each split's texts encoded once by the pretrained encoder (xcs.text.embed) and the
  result used as dense features x; the tf-idf features are dropped.
- `embedding+sparse`: the same x, with the sparse features kept beside it (for the dense_bag
  encoder, xcs.encoders.dense_bag).
- `tokens`: the texts tokenized once (truncated to max_len) for an encoder trained end to end;
  batches carry token_ids / token_mask (xcs.data.batching). The sparse features are kept.

Frozen embeddings of a text file are cached beside it as `<file>.<encoder>-<pooling>-L<max_len>
[-raw][-layers<i.j...>].xcs-cache.npz` (xcs.data.npz_cache), stamped with a SHA-256 of the file's bytes: a changed
file is encoded again, a copied or touched one is not. Synthetic texts have no file and are encoded
on every load (they are small).
"""

from __future__ import annotations

import dataclasses
import hashlib

import ml_collections
import numpy as np

from xcs.core.errors import UserError
from xcs.data.npz_cache import cached
from xcs.data.split import Split
from xcs.data.texts import Tokens

INPUTS = ("none", "embedding", "embedding+sparse", "tokens")
ENCODERS = ("minilm",)  # pretrained text encoders of xcs.text
POOLINGS = ("mean", "cls", "max", "mean+max")  # xcs.text.minilm.POOLINGS (not imported: no JAX here)
MAX_POSITIONS = 512  # BERT-family position table
_CACHE_VERSION = 1  # bump when the embeddings for the same text and settings change


def check_config(text: ml_collections.ConfigDict) -> None:
    """Refuses a mistyped config.data.text value, naming the key."""
    for key, allowed in (("inputs", INPUTS), ("encoder", ENCODERS), ("pooling", POOLINGS)):
        if text[key] not in allowed:
            raise UserError(f"config.data.text.{key}={text[key]!r}: expected one of {', '.join(allowed)}")
    if not 2 <= text.max_len <= MAX_POSITIONS:
        raise UserError(f"config.data.text.max_len={text.max_len}: must be in [2, {MAX_POSITIONS}] ([CLS] and "
                         "[SEP] take two tokens; the encoder has 512 positions)")
    if text.length_buckets < 1:
        raise UserError(f"config.data.text.length_buckets={text.length_buckets}: must be >= 1 (1 = every batch "
                         "max_len wide)")
    if text.group_by_length < 0:
        raise UserError(f"config.data.text.group_by_length={text.group_by_length}: must be >= 0 (0 = off)")
    embedding_layers(text)
    if text.embed_batch_size < 1:
        raise UserError(f"config.data.text.embed_batch_size={text.embed_batch_size}: must be >= 1")
    if text.tfidf_min_df < 1:
        raise UserError(f"config.data.text.tfidf_min_df={text.tfidf_min_df}: must be >= 1 (training texts a token "
                        "must occur in)")
    if text.tfidf_max_features < 0:
        raise UserError(f"config.data.text.tfidf_max_features={text.tfidf_max_features}: must be >= 0 (0 = no limit)")


def embedding_layers(text: ml_collections.ConfigDict) -> tuple[int, ...] | None:
    """config.data.text.layers as layer indices; None for 'last' (the sentence embedding itself)."""
    if text.layers == "last":
        return None
    parts = str(text.layers).split(",")
    if not all(p.strip().isdigit() for p in parts):
        raise UserError(f"config.data.text.layers={text.layers!r}: expected 'last' or comma-separated layer "
                         "indices such as '3,6' (0 = the embedding layer's output)")
    layers = tuple(int(p) for p in parts)
    if text.inputs in ("embedding", "embedding+sparse"):  # the encoder's depth, from the weights' config file
        from xcs.text import weights

        deepest = weights.load_config().num_layers
        if max(layers) > deepest:
            raise UserError(f"config.data.text.layers={text.layers!r}: the {text.encoder} encoder has layers "
                             f"0..{deepest} (0 = the embedding layer's output, {deepest} = the last layer)")
    return layers


def cache_kind(text: ml_collections.ConfigDict) -> str:
    """The cache's name part for these encoder settings, e.g. 'minilm-mean-L128' or 'minilm-mean-L128-layers3.6'."""
    layers = embedding_layers(text)
    return (f"{text.encoder}-{text.pooling}-L{text.max_len}" + ("" if text.normalize else "-raw")
            + ("" if layers is None else "-layers" + ".".join(map(str, layers))))


def _embed_texts(texts: list[str], text: ml_collections.ConfigDict) -> np.ndarray:
    """[N, dim] float32 sentence embeddings from the pretrained encoder (imported only when needed)."""
    from xcs.text.embed import embed_texts

    return embed_texts(texts, max_len=text.max_len, batch_size=text.embed_batch_size, pooling=text.pooling,
                       normalize=text.normalize, progress=True, layers=embedding_layers(text))


def _tokenize(texts: list[str], max_len: int) -> Tokens:
    """Token ids ([CLS] ... [SEP], truncated to max_len, 0-padded) of the pretrained encoder's tokenizer."""
    from xcs.text import weights
    from xcs.text.tokenizer import TextTokenizer

    ids, mask = TextTokenizer(weights.tokenizer_path()).encode(texts, max_len)
    padded = np.zeros((len(texts), max_len), np.int32)  # every split max_len wide; batches cut it (token_width)
    padded[:, :ids.shape[1]] = ids
    return Tokens(padded, mask.sum(axis=1).astype(np.int32))


def embeddings(texts: np.ndarray, text: ml_collections.ConfigDict, path: str | None = None) -> np.ndarray:
    """Frozen embeddings of `texts`, cached beside `path` (their text file) when there is one."""

    def build() -> dict[str, np.ndarray]:
        x = np.asarray(_embed_texts(list(texts), text), np.float32)
        if x.ndim != 2 or x.shape[0] != len(texts):
            raise ValueError(f"text encoder returned shape {x.shape} for {len(texts)} texts")
        return {"x": x}

    if path is None:
        return build()["x"]
    return cached(path, cache_kind(text), _CACHE_VERSION, build, stamp=content_stamp(path, cache_kind(text)))["x"]


def content_stamp(path: str, kind: str) -> np.ndarray:
    """int64 [4]: SHA-256 of the file's bytes and the settings `kind`."""
    digest = hashlib.sha256(kind.encode() + b"\0")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return np.frombuffer(digest.digest(), np.int64).copy()


def add_text_inputs(text: ml_collections.ConfigDict, split: Split, path: str | None) -> Split:
    """`split` (with its texts) given the inputs config.data.text.inputs asks for."""
    if split.texts is None:
        raise UserError(f"config.data.text.inputs={text.inputs!r}: this data source has no texts (text inputs "
                         "need source xmc_repo or tfds with text files, or synthetic)")
    if text.inputs in ("embedding", "embedding+sparse"):
        x = embeddings(split.texts, text, path)
        if text.inputs == "embedding+sparse" and split.features is None:
            raise UserError("config.data.text.inputs='embedding+sparse': this data set has no sparse features "
                             "(use inputs='embedding')")
        features = split.features if text.inputs == "embedding+sparse" else None
        return dataclasses.replace(split, dense=x, features=features)
    if text.inputs == "tokens":
        return dataclasses.replace(split, tokens=_tokenize(list(split.texts), text.max_len))
    return split
