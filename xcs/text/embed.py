"""Frozen sentence embeddings of many texts: jitted, batched by token length."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from xcs.text import weights
from xcs.text.minilm import POOLINGS, MiniLM, pool, pooled_size
from xcs.text.tokenizer import TextTokenizer

BUCKET = 16  # default: batches are padded to the next multiple of this many tokens


@functools.lru_cache(maxsize=1)
def load_minilm() -> tuple[MiniLM, Any, TextTokenizer]:
    """(module, params, tokenizer) of all-MiniLM-L6-v2, loaded once per process.

    params are on the default device, ready for `module.apply({"params": params}, ids, mask)`.
    """
    config = weights.load_config()
    params = jax.device_put(weights.load_params(config))
    return MiniLM(config), params, TextTokenizer(weights.tokenizer_path())


def bucket_length(length: int, max_len: int, bucket: int = BUCKET) -> int:
    """The padded width of a batch whose longest text has `length` tokens.

    Multiples of `bucket`: at max_len=128 and bucket=16 at most 8 shapes compile, and a batch of
    short texts is not padded to the longest text of the data set.
    """
    return min(max_len, -(-max(length, 1) // bucket) * bucket)


@functools.partial(jax.jit, static_argnames=("module", "pooling", "normalize", "layers"))
def _encode(module: MiniLM, params: Any, ids: jax.Array, mask: jax.Array, pooling: str,
            normalize: bool, layers: tuple[int, ...] | None = None) -> jax.Array:
    """[B, len(layers) * pooled_size]: the pooled states of `layers` (None: the last layer only)."""
    states = module.apply({"params": params}, ids, mask, all_layers=True)
    layers = (len(states) - 1,) if layers is None else layers
    return jnp.concatenate([pool(states[i], mask, pooling, normalize) for i in layers], axis=-1)


def embed_texts(texts: Sequence[str], *, max_len: int = 128, batch_size: int = 256, pooling: str = "mean",
                normalize: bool = True, progress: bool = False, bucket: int = BUCKET,
                layers: Sequence[int] | None = None) -> np.ndarray:
    """float32 [N, hidden] sentence embeddings of `texts`, in their order ([N, 2 hidden] for mean+max).

    With the defaults (mean pooling, L2 normalisation) these are all-MiniLM-L6-v2's
    sentence-transformers embeddings of texts truncated to max_len tokens ([CLS]/[SEP] included).
    layers: pool these layers' token states instead of the last one's (0 = the embedding layer's
    output, num_layers = the last) and concatenate them, each pooled and normalised on its own:
    [N, len(layers) * hidden]. The lower layers keep more of the words themselves.
    Texts are sorted by token length and cut into batches of `batch_size`, each padded only to
    bucket_length of its longest text (a multiple of `bucket`; bucket=max_len pads every batch
    to max_len, the benchmark's baseline); every batch has batch_size rows (the last is filled
    with empty rows), so jit compiles one shape per bucket.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r}: expected one of {POOLINGS}")
    if batch_size < 1 or bucket < 1:
        raise ValueError(f"batch_size={batch_size}, bucket={bucket}: must be >= 1")
    module, params, tokenizer = load_minilm()
    if max_len > module.config.max_position:
        raise ValueError(f"max_len={max_len} > {module.config.max_position}, the longest input of the model")
    if layers is not None:
        layers = tuple(int(i) for i in layers)
        if not layers or not all(0 <= i <= module.config.num_layers for i in layers):
            raise ValueError(f"layers={layers}: expected indices in 0..{module.config.num_layers} (0 = the "
                             f"embedding layer, {module.config.num_layers} = the last layer)")
    ids, mask = tokenizer.encode(texts, max_len)
    n = len(ids)
    width = pooled_size(pooling, module.config.hidden_size) * (1 if layers is None else len(layers))
    out = np.zeros((n, width), np.float32)
    lengths = mask.sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        width = bucket_length(int(lengths[rows].max()), max_len, bucket)
        batch_ids = np.zeros((batch_size, width), np.int32)
        batch_mask = np.zeros((batch_size, width), np.int32)
        used = min(width, ids.shape[1])  # the bucket can be wider than the longest text of the set
        batch_ids[:len(rows), :used] = ids[rows, :used]
        batch_mask[:len(rows), :used] = mask[rows, :used]
        vectors = _encode(module, params, jnp.asarray(batch_ids), jnp.asarray(batch_mask), pooling, normalize,
                          layers)
        out[rows] = np.asarray(vectors)[:len(rows)]
        if progress:
            done = min(start + batch_size, n)
            print(f"\rembed_texts: {done}/{n} texts, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr,
                  flush=True)
    if progress:
        print(file=sys.stderr)
    return out
