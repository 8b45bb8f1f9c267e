"""A BERT-family encoder in Flax linen (the architecture of all-MiniLM-L6-v2), plus pooling.

Post-LN as in BERT: x = LN(x + Attention(x)); x = LN(x + FFN(x)). Parameter names follow the
Hugging Face tensors closely so that xcs.text.weights maps them one to one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The numbers of a Hugging Face BERT `config.json` that the forward pass needs."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1  # used only with deterministic=False (fine-tuning)
    attention_dropout: float = 0.1

    @classmethod
    def from_json(cls, path: str) -> BertConfig:
        with open(path) as f:
            c: dict[str, Any] = json.load(f)
        if c.get("hidden_act", "gelu") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only BERT with hidden_act=gelu and absolute positions is implemented, got "
                             f"hidden_act={c.get('hidden_act')!r}, position_embedding_type="
                             f"{c.get('position_embedding_type')!r}")
        return cls(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
                   num_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
                   max_position=c["max_position_embeddings"], type_vocab_size=c["type_vocab_size"],
                   layer_norm_eps=c["layer_norm_eps"], hidden_dropout=c["hidden_dropout_prob"],
                   attention_dropout=c["attention_probs_dropout_prob"])


class SelfAttention(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        b, t, d = x.shape
        head_dim = d // c.num_heads
        split = lambda y: y.reshape(b, t, c.num_heads, head_dim)
        q = split(nn.Dense(d, name="query")(x))
        k = split(nn.Dense(d, name="key")(x))
        v = split(nn.Dense(d, name="value")(x))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.float32(head_dim)).astype(x.dtype)
        # Padding keys get a large negative score, not -inf, so a row of padding only (a filler row of a
        # batch) gives finite uniform weights instead of NaN.
        scores = jnp.where(mask[:, None, None, :] > 0, scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores, axis=-1)
        weights = nn.Dropout(c.attention_dropout, deterministic=deterministic)(weights)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d)
        return nn.Dense(d, name="output")(out)


class Layer(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        drop = nn.Dropout(c.hidden_dropout, deterministic=deterministic)
        y = SelfAttention(c, name="attention")(x, mask, deterministic)
        x = nn.LayerNorm(epsilon=c.layer_norm_eps, name="attention_norm")(x + drop(y))
        # BERT's "gelu" is the exact erf form; flax's default is the tanh approximation.
        y = nn.gelu(nn.Dense(c.intermediate_size, name="intermediate")(x), approximate=False)
        y = nn.Dense(c.hidden_size, name="output")(y)
        return nn.LayerNorm(epsilon=c.layer_norm_eps, name="output_norm")(x + drop(y))


class MiniLM(nn.Module):
    """`(ids [B, T] int, mask [B, T] int) -> token states [B, T, hidden]`.

    Token type ids are all 0 (single sentences); positions are 0..T-1, so T <= max_position.
    With all_layers=True: the list of num_layers + 1 states [B, T, hidden], the embedding layer's
    output first and the last layer's (the default output) last.
    """

    config: BertConfig

    @nn.compact
    def __call__(self, ids: jax.Array, mask: jax.Array, deterministic: bool = True,
                 all_layers: bool = False) -> jax.Array | list[jax.Array]:
        c = self.config
        t = ids.shape[1]
        if t > c.max_position:
            raise ValueError(f"sequence length {t} > max_position {c.max_position} of the pretrained model")
        x = (nn.Embed(c.vocab_size, c.hidden_size, name="word_embeddings")(ids)
             + nn.Embed(c.max_position, c.hidden_size, name="position_embeddings")(jnp.arange(t))[None]
             + nn.Embed(c.type_vocab_size, c.hidden_size, name="token_type_embeddings")(jnp.zeros_like(ids)))
        x = nn.LayerNorm(epsilon=c.layer_norm_eps, name="embeddings_norm")(x)
        x = nn.Dropout(c.hidden_dropout, deterministic=deterministic)(x)
        states = [x]
        for i in range(c.num_layers):
            x = Layer(c, name=f"layer_{i}")(x, mask, deterministic)
            states.append(x)
        return states if all_layers else x


POOLINGS = ("mean", "cls", "max", "mean+max")


def pooled_size(pooling: str, hidden: int) -> int:
    """Width of pool()'s output: mean+max concatenates two hidden-wide vectors."""
    return hidden * len(pooling.split("+"))


def pool(states: jax.Array, mask: jax.Array, pooling: str, normalize: bool) -> jax.Array:
    """[B, T, d] token states -> [B, d] sentence vectors ([B, 2d] for mean+max).

    mean: average over the tokens where mask = 1 ([CLS] and [SEP] included, as sentence-transformers
    does); cls: the state of the first token; max: the largest value of each dimension over those tokens
    (0 for an all-padding row); mean+max: both, each normalised on its own, concatenated. Max keeps
    what single tokens say strongly (a rare word's own direction) that the mean averages away.
    normalize: divide by the L2 norm (the Normalize module of all-MiniLM-L6-v2's sentence-transformers
    pipeline; cosine similarity becomes a dot product).
    """
    if pooling == "mean+max":
        return jnp.concatenate([pool(states, mask, p, normalize) for p in ("mean", "max")], axis=-1)
    if pooling == "mean":
        m = mask.astype(states.dtype)[..., None]
        # max(count, 1e-9) as sentence-transformers: an all-padding filler row gives 0, not NaN.
        pooled = (states * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1e-9)
    elif pooling == "cls":
        pooled = states[:, 0]
    elif pooling == "max":
        valid = mask[..., None] > 0
        pooled = jnp.where(valid, states, -jnp.inf).max(axis=1)
        pooled = jnp.where(valid.any(axis=1), pooled, 0.0)
    else:
        raise ValueError(f"pooling={pooling!r}: expected one of {POOLINGS}")
    if normalize:  # torch.nn.functional.normalize: x / max(||x||, 1e-12)
        pooled = pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled
