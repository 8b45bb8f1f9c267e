"""The dense_bag combination encoder against a naive reference, and the text configs end to end."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import xmc
from tests.conftest import ROOT
from tests.test_texts import fake_embed
from xcs.data import text_inputs
from xcs.encoders.dense_bag import DenseBagEncoder
from xcs.train import loop


def naive_bag(table, idx, val):
    out = np.zeros((idx.shape[0], table.shape[1]), np.float64)
    for b in range(idx.shape[0]):
        for f in range(idx.shape[1]):
            out[b] += val[b, f] * table[idx[b, f]]
    return out


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_dense_bag_encoder_matches_the_naive_combination(combine):
    rng = np.random.default_rng(1)
    B, F, V, D, W = 5, 7, 50, 12, 16
    batch = {"x": jnp.asarray(rng.normal(size=(B, D)), jnp.float32),
             "feat_idx": jnp.asarray(rng.integers(0, V, size=(B, F)), jnp.int32),
             "feat_val": jnp.asarray(rng.random(size=(B, F)), jnp.float32)}
    enc = DenseBagEncoder(num_features=V, width=W, mlp_layers=0, dropout=0.0, input_dropout=0.0, normalize="none",
                          combine=combine, embedding_init_std=0.5)
    params = enc.init(jax.random.PRNGKey(0), batch, False)["params"]
    part = W if combine == "sum" else W // 2
    table = np.asarray(params["bag"]["embedding"], np.float64)
    kernel, bias = (np.asarray(params["project"][k], np.float64) for k in ("kernel", "bias"))
    assert table.shape == (V, part) and kernel.shape == (D, part)
    dense = np.asarray(batch["x"], np.float64) @ kernel + bias
    bag = naive_bag(table, np.asarray(batch["feat_idx"]), np.asarray(batch["feat_val"], np.float64))
    expected = dense + bag if combine == "sum" else np.concatenate([dense, bag], axis=1)
    got = enc.apply({"params": params}, batch, False)
    assert got.shape == (B, W)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


def test_concat_needs_an_even_width():
    config = xmc.get_config("encoder=minilm+tfidf")
    config.model.encoder.combine = "concat"
    config.model.encoder.width = 33
    from xcs.registry import build_model

    with pytest.raises(ValueError, match="config.model.encoder.width=33"):
        build_model(config, 10, 10)
    config.model.encoder.combine = "mean"
    with pytest.raises(ValueError, match="config.model.encoder.combine='mean'"):
        build_model(config, 10, 10)


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_minilm_tfidf_smoke_trains_in_process(tmp_path, monkeypatch, combine):
    """The combination on the synthetic smoke data, with a stand-in embedder (fast)."""
    monkeypatch.setattr(text_inputs, "_embed_texts", lambda t, c: fake_embed(t, c))
    config = xmc.get_config("encoder=minilm+tfidf,smoke")
    config.model.encoder.combine = combine
    config.train.progress = "none"
    results = loop.train_and_evaluate(config, str(tmp_path))
    assert results["test"]["P@1"] > 5.0  # the tf-idf part alone learns the smoke data


def launch(workdir, arg, *overrides):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config=configs/xmc.py:{arg}", f"--workdir={workdir}",
           "--config.train.progress=none", *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("encoder", ["minilm", "minilm+tfidf", "minilm_e2e"])
def test_text_encoders_run_through_launch(tmp_path, encoder):
    """The real MiniLM (frozen embeddings, or trained end to end) on synthetic texts."""
    run = launch(tmp_path / "run", f"encoder={encoder},smoke")
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert 0.0 <= results["test"]["P@1"] <= 100.0
    assert config["data"]["text"]["inputs"] == {"minilm": "embedding", "minilm+tfidf": "embedding+sparse",
                                                "minilm_e2e": "tokens"}[encoder]
