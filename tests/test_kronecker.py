"""Kronecker data and the dense / primal / structured representations of the two-layer network."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default
from xcs.data import kronecker as kdata
from xcs.data.batching import Batcher
from xcs.data.dataset import load_dataset
from xcs.kronecker import layer as km


def _factors(rng, n, dims):
    return [jnp.asarray(f) for f in kdata.unit_factors(rng, n, dims)]


@pytest.mark.parametrize("dims", [(4, 5), (3, 2, 4)])
def test_projection_and_gram_equal_the_formed_x(dims):
    rng = np.random.default_rng(0)
    factors = _factors(rng, 7, dims)
    w = jnp.asarray(rng.standard_normal((6, *dims)), jnp.float32)
    x = km.formed_x(factors)
    # The naive reference: the outer product built with numpy, then a dense layer.
    x_np = np.stack([np.einsum(",".join("abc"[:len(dims)]) + "->" + "abc"[:len(dims)], *[np.asarray(f[i])
                                                                                        for f in factors]).ravel()
                     for i in range(7)])
    np.testing.assert_allclose(x, x_np, rtol=1e-6)
    np.testing.assert_allclose(km.project(w, factors), x_np @ np.asarray(w).reshape(6, -1).T, rtol=1e-5, atol=1e-5)
    others = _factors(rng, 3, dims)
    np.testing.assert_allclose(km.gram_rows(others, factors), km.formed_x(others) @ x_np.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(x_np, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("use_gram", [False, True])
def test_primal_structured_and_dense_agree_after_20_sgd_steps(use_gram):
    rng = np.random.default_rng(1)
    dims, m, n, batch, shift, lr = (5, 6), 16, 40, 8, 0.3, 0.5
    train = _factors(rng, n, dims)
    y = jnp.asarray(rng.standard_normal(n), jnp.float32)
    new = _factors(rng, 9, dims)
    w0, a = km.init_network(jax.random.PRNGKey(3), dims, m)
    x_train = km.formed_x(train)

    state = km.init_structured(w0, train, chunk=16)
    np.testing.assert_allclose(state.pre, (x_train @ w0.reshape(m, -1).T).T, rtol=1e-5, atol=1e-5)
    gram = x_train @ x_train.T if use_gram else None
    w_primal, w_dense = w0, w0.reshape(m, -1)
    primal_step, dense_step = jax.jit(km.primal_step), jax.jit(km.dense_step)
    structured_step = jax.jit(km.structured_step)
    active = []
    for _ in range(20):
        rows = jnp.asarray(rng.choice(n, batch, replace=False))
        fb = [f[rows] for f in train]
        w_primal, loss_p = primal_step(w_primal, a, shift, fb, y[rows], lr)
        w_dense, loss_d = dense_step(w_dense, a, shift, km.formed_x(fb), y[rows], lr)
        state, metrics = structured_step(state, rows, y[rows], train, a, shift, lr, gram)
        np.testing.assert_allclose(metrics["loss"], loss_p, rtol=1e-4)
        np.testing.assert_allclose(loss_d, loss_p, rtol=1e-4)
        active.append(float(metrics["active_frac"]))
    assert 0.0 < min(active) and max(active) < 1.0  # the shift makes some neurons inactive
    assert not np.allclose(w_primal, w0, atol=1e-3)  # training moved the weights
    np.testing.assert_allclose(w_dense.reshape(w0.shape), w_primal, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(km.structured_weights(state, w0, train), w_primal, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state.pre, km.project(w_primal, train).T, rtol=1e-4, atol=1e-4)
    out_primal = km.output(km.project(w_primal, new), a, shift)
    out_dense = km.output(km.formed_x(new) @ w_dense.T, a, shift)
    out_struct = km.structured_predict(state, w0, a, shift, train, new)
    np.testing.assert_allclose(out_dense, out_primal, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out_struct, out_primal, rtol=1e-4, atol=1e-5)


def test_one_sgd_step_equals_the_network_written_out_on_np_kron_inputs():
    """Song & Ye's network written here in float64 numpy on x_i = f_i0 ⊗ f_i1 ⊗ ... formed with np.kron:
    f(x) = m^(-1/2) Σ_r a_r max(w_rᵀx − b, 0), loss ½ mean_i (f(x_i) − y_i)², and its gradient by hand,
    ∇w_r = (1/B) Σ_i (f(x_i) − y_i) (a_r / √m) 1[w_rᵀx_i > b] x_i. One step of the dense, primal and structured
    representations, and the encoder's features, must equal it (nothing of xcs.kronecker computes the reference)."""
    rng = np.random.default_rng(5)
    dims, m, n, batch, shift, lr = (3, 2, 4), 12, 30, 8, 0.2, 0.7  # three factors: np.kron's order is the layout
    train = _factors(rng, n, dims)
    y = rng.standard_normal(n).astype(np.float32)
    w0, a = km.init_network(jax.random.PRNGKey(5), dims, m)
    rows = rng.choice(n, batch, replace=False)

    fs = [np.asarray(f, np.float64) for f in train]
    x = np.stack([functools.reduce(np.kron, [f[i] for f in fs]) for i in range(n)])  # [n, d]
    W, A = np.asarray(w0, np.float64).reshape(m, -1), np.asarray(a, np.float64)
    xb, yb = x[rows], y[rows].astype(np.float64)
    pre = xb @ W.T  # [B, m]
    assert 0.2 < (pre > shift).mean() < 0.8  # active and inactive neurons both occur
    f = np.maximum(pre - shift, 0.0) @ A / np.sqrt(m)
    loss = 0.5 * np.mean((f - yb) ** 2)
    grad = ((f - yb)[:, None] * (pre > shift) * A / np.sqrt(m)).T @ xb / batch  # [m, d]
    W1 = W - lr * grad
    tol = dict(rtol=1e-4, atol=1e-5)

    np.testing.assert_allclose(km.formed_x(train), x, rtol=1e-6, atol=1e-7)
    batch_factors = [f[rows] for f in train]
    w_primal, loss_primal = jax.jit(km.primal_step)(w0, a, shift, batch_factors, y[rows], lr)
    w_dense, loss_dense = jax.jit(km.dense_step)(w0.reshape(m, -1), a, shift, jnp.asarray(xb, jnp.float32), y[rows],
                                                 lr)
    state, metrics = jax.jit(km.structured_step)(km.init_structured(w0, train), jnp.asarray(rows), y[rows], train,
                                                 a, shift, lr)
    for got_w, got_loss in ((w_primal, loss_primal), (w_dense, loss_dense),
                            (km.structured_weights(state, w0, train), metrics["loss"])):
        np.testing.assert_allclose(np.asarray(got_w).reshape(m, -1), W1, **tol)
        np.testing.assert_allclose(float(got_loss), loss, rtol=1e-5)
    np.testing.assert_allclose(state.pre, W1 @ x.T, **tol)  # every training point's pre-activation after the step
    new = _factors(rng, 5, dims)
    x_new = np.stack([functools.reduce(np.kron, [np.asarray(f[i], np.float64) for f in new]) for i in range(5)])
    want_new = np.maximum(x_new @ W1.T - shift, 0.0) @ A / np.sqrt(m)
    np.testing.assert_allclose(jax.jit(km.structured_predict)(state, w0, a, shift, train, new), want_new, **tol)
    encoder = km.KroneckerEncoder(width=m, shift=shift, init_std=1.0)
    h = jax.jit(encoder.apply, static_argnums=2)({"params": {"kernel": w0}},
                                                  {f"factor{k}": f[rows] for k, f in enumerate(train)}, False)
    np.testing.assert_allclose(h, np.maximum(pre - shift, 0.0), **tol)


def test_synthetic_generator_targets_and_reproducibility():
    spec = kdata.KroneckerSpec(num_train=300, num_test=50, dims=(6, 7), num_classes=5, seed=2)
    (u, v), labels = kdata.generate_split(spec, "train")
    assert u.shape == (300, 6) and v.shape == (300, 7) and labels.num_cols == 5
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-5)
    # The class is the argmax of the planted teacher, computed here on the formed x.
    rng = np.random.default_rng([2, 0x7EAC])
    p = [rng.standard_normal((5, 4, d)) for d in (6, 7)]
    a = np.einsum("crd,cre->cde", p[0], p[1]).reshape(5, -1) / 2.0
    x = np.einsum("nd,ne->nde", u, v).reshape(300, -1)
    np.testing.assert_array_equal(labels.indices, np.argmax(x @ a.T, axis=1))
    assert len(np.unique(labels.indices)) > 1
    (u2, _), labels2 = kdata.generate_split(spec, "train")
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(labels.indices, labels2.indices)
    (_, _), y = kdata.generate_split(kdata.KroneckerSpec(num_train=20, dims=(3, 3), task="regression"), "train")
    assert y.dtype == np.float32 and y.shape == (20,)
    with pytest.raises(ValueError, match="config.data.kronecker.task"):
        kdata.KroneckerSpec(task="ranking")


def _data_config(**kw) -> ml_collections.ConfigDict:
    config = default.get_config().data
    config.source = "kronecker"
    k = config.kronecker
    k.num_train, k.num_test, k.dims = 100, 30, (4, 3)
    for key, value in kw.items():
        setattr(config, key, value)
    return config


def test_load_dataset_and_batches_carry_factors_not_x(tmp_path):
    data = load_dataset(_data_config(), seed=0)
    assert data.num_features == 12 and data.num_labels == 10 and data.train.factors[0].shape == (100, 4)
    batch = Batcher(data.train, 0, 0)(np.arange(5))
    assert sorted(batch) == ["factor0", "factor1", "label_idx", "label_mask"]
    assert batch["factor1"].shape == (5, 3)

    # User files: the same data written as .npy and read back.
    for split_name, split in (("train", data.train), ("test", data.test)):
        for k, f in enumerate(split.factors):
            np.save(tmp_path / f"{split_name}_factor{k}.npy", f)
        np.save(tmp_path / f"{split_name}_y.npy", split.labels.indices.astype(np.int64))
    config = _data_config(dir=str(tmp_path))
    config.kronecker.from_files = True
    loaded = load_dataset(config, seed=0)
    np.testing.assert_array_equal(loaded.train.factors[1], data.train.factors[1])
    np.testing.assert_array_equal(loaded.test.labels.indices, data.test.labels.indices)

    np.save(tmp_path / "train_factor1.npy", np.zeros((99, 3)))
    with pytest.raises(ValueError, match="train_factor1.npy: 99 rows"):
        load_dataset(config, seed=0)
    np.save(tmp_path / "train_factor1.npy", data.train.factors[1])
    np.save(tmp_path / "train_y.npy", np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="regression"):
        load_dataset(config, seed=0)


def test_kronecker_encoder_is_the_primal_layer():
    config = default.get_config()
    config.model.encoder.name, config.model.encoder.width, config.kronecker.shift = "kronecker", 8, 0.2
    encoder = km.make_kronecker_encoder(config, 12)
    rng = np.random.default_rng(4)
    u, v = _factors(rng, 5, (4, 3))
    batch = {"factor0": u, "factor1": v}
    variables = encoder.init(jax.random.PRNGKey(0), batch, False)
    w = variables["params"]["kernel"]
    assert w.shape == (8, 4, 3)
    h = encoder.apply(variables, batch, False)
    np.testing.assert_allclose(h, np.maximum(km.formed_x([u, v]) @ w.reshape(8, -1).T - 0.2, 0), rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="factor0"):
        encoder.apply(variables, {"x": u}, False)


def _paper_config(**train):
    from configs import kronecker as kconfig

    config = kconfig.get_config("paper,smoke,steps=40")
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def test_paper_trainer_representations_agree_sync_and_async():
    from experiments import kronecker_train as kt

    result = kt.run(_paper_config(), ["structured", "primal", "dense"], [0, 3], [4], eval_every=10)
    assert result["same_model"] < 1e-4
    curves = {label: np.array([[c["train_loss"], c["test_loss"]] for c in r["curve"]])
              for label, r in result["curves"].items()}
    for rep in ("primal", "dense"):  # same delays, same model, whatever the representation
        for label in ("sync", "async tau=3 W=4 fixed"):
            np.testing.assert_allclose(curves[f"{rep} {label}"], curves[f"structured {label}"], rtol=1e-4)
    sync, stale = curves["structured sync"], curves["structured async tau=3 W=4 fixed"]
    assert sync[-1, 0] < 0.9 * sync[0, 0]  # it trains
    np.testing.assert_array_equal(curves["structured async tau=0 W=4 fixed"], sync)  # τ = 0 is synchronous SGD
    assert not np.allclose(stale, sync, rtol=1e-6)  # staleness changes the run
    rows = {(r["repr"], r["mode"], r["tau"]): r for r in result["rows"]}
    assert rows[("structured", "async", 3)]["max_delay"] == 3 and rows[("structured", "sync", 0)]["max_delay"] == 0


@pytest.mark.parametrize("key,value,match", [
    ("optimizer", None, "config.train.optimizer.encoder.name"),
    ("schedule", "cosine", "config.train.schedule"),
    ("steps", 0, "config.train.steps"),
    ("task", "classification", "config.data.kronecker.task"),
    ("validation", 0.1, "config.data.validation_fraction"),
])
def test_paper_trainer_refuses_what_it_does_not_implement(key, value, match):
    from experiments import kronecker_train as kt

    config = _paper_config()
    if key == "optimizer":
        config.train.optimizer.encoder.name = "adam"
    elif key == "task":
        config.data.kronecker.task = value
    elif key == "validation":
        config.data.validation_fraction = value
    else:
        setattr(config.train, key, value)
    with pytest.raises(ValueError, match=match):
        kt.run(config, ["structured"], [], [])
    with pytest.raises(ValueError, match="--reprs"):
        kt.run(_paper_config(), ["sparse"], [], [])


def test_kronecker_source_and_encoder_go_together():
    from configs import kronecker as kconfig
    from xcs.validate import validate

    config = kconfig.get_config("smoke")
    config.model.encoder.name = "bag"
    with pytest.raises(ValueError, match="config.model.encoder.name='bag': data.source='kronecker' is read by the "
                       "kronecker encoder only"):
        validate(config)
    config = default.get_config()
    config.model.encoder.name = "kronecker"
    with pytest.raises(ValueError, match="config.data.source='synthetic': the kronecker encoder reads kronecker"):
        validate(config)


def test_benchmark_quick(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "kronecker.json"
    run = subprocess.run([sys.executable, "-m", "experiments.benchmarks.kronecker", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert {r["repr"] for r in rows} == {"dense", "primal", "structured", "structured+gram"}
    for r in rows:
        assert {"repr", "d", "n", "m", "iter_ms", "peak_rss_mb", "active_frac"} <= set(r)
        assert r["iter_ms"] > 0
        assert (r["active_frac"] is not None) == r["repr"].startswith("structured")
    # --quick measures dense/primal at the small d and extrapolates them (∝ d) at the largest.
    dense = {r["d"]: r for r in rows if r["repr"] == "dense"}
    assert dense[1024]["extrapolated"] and not dense[256]["extrapolated"]
    assert dense[1024]["iter_ms"] == pytest.approx(4 * dense[256]["iter_ms"])
    assert report["summary"]["dense_extrapolated"] is True
