"""Simulated asynchronous SGD (xcs.train.async_step) against a naive stale-gradient reference."""

import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from tests.conftest import ROOT
from xcs.data.batching import Batcher, EpochIterator
from xcs.data.dataset import load_dataset
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.registry import build_model
from xcs.train.async_step import make_step, wrap_optimizer
from xcs.train.optim import make_optimizer
from xcs.train.state import create_state
from xcs.validate import validate

STEPS = 12


def _setup(config_path: str, **async_):
    """(config, model, loss_fn, plain tx, schedules, batches) of a config's smoke variant."""
    config = importlib.import_module(config_path).get_config("smoke")
    for key, value in async_.items():
        setattr(config.async_, key, value)
    config.train.mode = "async" if async_ else "sync"
    data = load_dataset(config.data, config.seed)
    iterator = EpochIterator(Batcher(data.train, config.data.max_features, config.data.max_labels),
                             config.train.batch_size, config.seed)
    batches = list(iterator.iterate(0, STEPS))
    model = build_model(config, data.num_features, data.num_labels, data=data)
    tx, schedules = make_optimizer(config, STEPS)
    return config, model, get_loss(config.loss.name), tx, schedules, batches


def _run(config, model, loss_fn, tx, schedules, batches):
    """Parameters θ_0..θ_T (host copies) and the metrics of each step."""
    tx = wrap_optimizer(config, tx)
    state = create_state(model, tx, batches[0], loss_fn, jax.random.PRNGKey(0))
    step = make_step(config, model, tx, loss_fn, schedules)
    params, metrics = [jax.device_get(state.params)], []
    for batch in batches:
        state, m = step(state, batch, jax.random.PRNGKey(1))
        params.append(jax.device_get(state.params))
        metrics.append(jax.device_get(m))
    return params, metrics


def _assert_trees(a, b, exact=False, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, **tol)


@pytest.mark.parametrize("config_path", ["configs.xmc", "configs.kronecker"])
def test_tau_zero_is_synchronous_sgd_step_for_step(config_path):
    sync = _run(*_setup(config_path))
    for delay in ("fixed", "random"):
        asynchronous = _run(*_setup(config_path, max_staleness=0, workers=4, delay=delay))
        for t in range(STEPS + 1):
            _assert_trees(asynchronous[0][t], sync[0][t], exact=True)
        assert all(int(m["delay"]) == 0 for m in asynchronous[1])
        np.testing.assert_array_equal([m["loss"] for m in asynchronous[1]], [m["loss"] for m in sync[1]])


@pytest.mark.parametrize("delay,tau,workers", [("random", 3, 8), ("fixed", 8, 3)])
def test_each_gradient_is_computed_at_parameters_as_old_as_its_delay(delay, tau, workers):
    config, model, loss_fn, tx, schedules, batches = _setup("configs.kronecker", max_staleness=tau, workers=workers,
                                                             delay=delay)
    params, metrics = _run(config, model, loss_fn, tx, schedules, batches)
    delays = [int(m["delay"]) for m in metrics]
    bound = min(tau, workers - 1)
    assert delays == [min(t, bound) for t in range(STEPS)] if delay == "fixed" else len(set(delays)) > 1
    assert all(0 <= d <= min(t, bound) for t, d in enumerate(delays))

    # The naive reference: keep every θ_t, take the gradient of batch t at θ_{t − δ_t}, apply the
    # plain optimizer to the current parameters θ_t.
    def objective(p, batch, t):
        return model.apply({"params": p}, batch, loss_fn, True, method=XMCModel.loss,
                           rngs={"dropout": jax.random.fold_in(jax.random.PRNGKey(1), t)}).mean()

    grad = jax.jit(jax.value_and_grad(objective))
    ref = [params[0]]
    opt = tx.init(params[0])
    for t, batch in enumerate(batches):
        loss, g = grad(ref[t - delays[t]], batch, t)
        np.testing.assert_allclose(metrics[t]["loss"], loss, rtol=1e-5)
        updates, opt = tx.update(g, opt, ref[t])
        ref.append(optax.apply_updates(ref[t], updates))
        _assert_trees(params[t + 1], ref[t + 1], rtol=2e-5, atol=1e-6)
    # Staleness changes the run: the synchronous parameters differ.
    sync = _run(*_setup("configs.kronecker"))[0]
    assert not np.allclose(sync[-1]["encoder"]["kernel"], params[-1]["encoder"]["kernel"], atol=1e-5)


def test_async_step_is_deterministic_and_refuses_bad_config():
    setup = _setup("configs.kronecker", max_staleness=4, workers=16, delay="random", seed=3)
    a, b = _run(*setup), _run(*setup)
    _assert_trees(a[0][-1], b[0][-1], exact=True)
    config = setup[0]
    config.async_.delay = "poisson"
    with pytest.raises(ValueError, match="config.async_.delay"):
        validate(config)
    config.async_.delay, config.train.mode = "fixed", "asynchronous"
    with pytest.raises(ValueError, match="config.train.mode"):
        validate(config)


def test_kronecker_async_smoke_through_launch(tmp_path):
    # The sync smoke variant of every config runs in tests/test_train.py.
    run = subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"),
                          "--config=configs/kronecker.py:smoke,mode=async,tau=2,workers=4,delay=random,d1=3,d2=4",
                          f"--workdir={tmp_path}", "--config.train.progress=none"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "results.json").exists()
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= last["delay"] <= 2
