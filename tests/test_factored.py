"""The factored output layer against plain SGD on a dense W (xcs.factored.layer, head, train step)."""

import json
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.tables import factored as factored_table
from tests.conftest import ROOT
from xcs.data.batching import Batcher, EpochIterator
from xcs.data.dataset import load_dataset
from xcs.factored import layer as F
from xcs.factored.head import head_state
from xcs.losses import get_loss
from xcs.registry import build_model, head_update
from xcs.spherical_losses import SPHERICAL_LOSSES
from xcs.train import loop
from xcs.train.optim import make_optimizer
from xcs.train.state import create_state, make_train_step
from xcs.validate import validate

D, DIM, K = 2000, 16, 3


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def random_state(rng, labels=D, dim=DIM, dtype=np.float64):
    """A generic factored state: random V, a non-trivial U and ω."""
    V = rng.normal(size=(labels, dim)) * 0.3
    U = np.eye(dim) + 0.2 * rng.normal(size=(dim, dim))
    omega = rng.normal(size=dim) * 0.1
    return F.factorize(*(jnp.asarray(x, dtype) for x in (V, U, omega)))


def batches(rng, steps, m, labels=D, dim=DIM):
    H = jnp.asarray(rng.normal(size=(steps, m, dim)) / np.sqrt(dim))
    idx = jnp.asarray(rng.integers(0, labels, (steps, m, K)), jnp.int32)
    idx = idx.at[:, 0, 1].set(idx[:, 0, 0])  # a repeated label id inside a point
    if m > 1:
        idx = idx.at[:, 1, 0].set(idx[:, 0, 0])  # and across points of the batch
    mask = jnp.asarray(rng.random((steps, m, K)) < 0.8).at[:, :, 0].set(True)
    return H, idx, mask


# The spherical family written out on the whole output o [..., L] from its papers' definitions (Vincent et al. 2015;
# de Brébisson & Vincent 2016): the reference of the tests below, independent of xcs.spherical_losses / xcs.losses.
# Positives come as label ids idx [..., Y] with a mask; a label listed twice counts as two positives.


def _at_positives(o, idx, mask):
    return jnp.take_along_axis(o, idx, axis=-1), mask.astype(o.dtype)


def _mean_over_positives(values, m):
    n = m.sum(-1)
    return jnp.where(n > 0, (values * m).sum(-1) / jnp.maximum(n, 1.0), 0.0)  # 0 for a point without positives


def squared_error_written_out(o, idx, mask):
    """‖o − y‖² with y = 1 on the positives: Σ_j o_j² plus, for each positive k, −2 o_k + 1."""
    o_pos, m = _at_positives(o, idx, mask)
    return jnp.sum(o**2, -1) + jnp.sum(m * (1.0 - 2.0 * o_pos), -1)


def spherical_softmax_written_out(o, idx, mask, eps=0.01):
    """−mean over the positives of log p_k, p_k = (o_k² + ε) / Σ_j (o_j² + ε), the sum over all L outputs."""
    o_pos, m = _at_positives(o, idx, mask)
    log_p = jnp.log(o_pos**2 + eps) - jnp.log(jnp.sum(o**2 + eps, -1, keepdims=True))
    return -_mean_over_positives(log_p, m)


def taylor_softmax_written_out(o, idx, mask):
    """−mean over the positives of log p_k, p_k = f(o_k) / Σ_j f(o_j), f(t) = 1 + t + t²/2 (second-order Taylor exp)."""
    f = lambda t: 1.0 + t + 0.5 * t**2  # noqa: E731
    o_pos, m = _at_positives(o, idx, mask)
    return -_mean_over_positives(jnp.log(f(o_pos)) - jnp.log(jnp.sum(f(o), -1, keepdims=True)), m)


def zloss_written_out(o, idx, mask, a=1.0, b=0.0, var_eps=1e-12):
    """Mean over the positives of (1/a) softplus(a (b − z_k)), z = (o − mean_j o_j) / std_j o_j over all L outputs."""
    o_pos, m = _at_positives(o, idx, mask)
    mu = jnp.mean(o, -1, keepdims=True)
    z = (o_pos - mu) / jnp.sqrt(jnp.mean((o - mu) ** 2, -1, keepdims=True) + var_eps)
    return _mean_over_positives(jax.nn.softplus(a * (b - z)) / a, m)


DENSE_LOSSES = {"squared_error": squared_error_written_out, "spherical_softmax": spherical_softmax_written_out,
                "taylor_softmax": taylor_softmax_written_out, "zloss": zloss_written_out}


def test_every_spherical_loss_has_a_written_out_reference():
    assert set(DENSE_LOSSES) == set(SPHERICAL_LOSSES)


def naive_sgd(W, H, idx, mask, loss_name, eta, weight_decay, per_example):
    """Plain SGD on a dense W with jax.grad of the written-out loss: the reference."""
    dense_loss = DENSE_LOSSES[loss_name]

    def step(W, batch):
        h, i, m = batch
        grad = jax.grad(lambda W: dense_loss(h @ W.T, i, m).sum())(W)
        return W - eta * (grad + weight_decay * W), None

    def minibatch(W, batch):
        if per_example:
            return jax.lax.scan(step, W, tuple(x[:, None] for x in batch))[0], None
        return step(W, batch)

    return jax.jit(lambda W: jax.lax.scan(minibatch, W, (H, idx, mask))[0])(W)


def factored_sgd(state, H, idx, mask, loss_name, eta, weight_decay, per_example):
    update = F.sequential_update if per_example else F.minibatch_update
    fn = SPHERICAL_LOSSES[loss_name]

    def step(st, batch):
        return update(st, *batch, fn, eta, weight_decay)[0], None

    return jax.jit(lambda st: jax.lax.scan(step, st, (H, idx, mask))[0])(state)


def assert_tracks(state, W):
    Wf = F.weights(state)
    assert float(jnp.abs(Wf - W).max()) <= 1e-9
    assert float(jnp.abs(state.Q - W.T @ W).max()) <= 1e-9
    assert float(jnp.abs(state.w_bar - W.sum(0)).max()) <= 1e-9
    assert float(jnp.abs(state.Uinv_T @ state.U.T - jnp.eye(W.shape[1])).max()) <= 1e-9


@pytest.mark.parametrize("loss_name", sorted(DENSE_LOSSES))
def test_minibatch_update_equals_dense_sgd(x64, loss_name):
    """200 Woodbury minibatch steps (with weight decay) = 200 steps of SGD on the dense W."""
    rng = np.random.default_rng(0)
    state = random_state(rng)
    W0 = F.weights(state)
    H, idx, mask = batches(rng, 200, 8)
    W = naive_sgd(W0, H, idx, mask, loss_name, 0.01, 0.1, per_example=False)
    assert float(jnp.abs(W - W0).max()) > 1e-3  # the run moved W
    assert_tracks(factored_sgd(state, H, idx, mask, loss_name, 0.01, 0.1, per_example=False), W)


@pytest.mark.parametrize("loss_name", ["squared_error", "spherical_softmax"])
def test_per_example_update_equals_online_sgd(x64, loss_name):
    """200 Sherman–Morrison steps (with weight decay), one example each, = online SGD on the dense W."""
    rng = np.random.default_rng(1)
    state = random_state(rng)
    H, idx, mask = batches(rng, 50, 4)  # 4 examples in order per minibatch: 200 steps
    W = naive_sgd(F.weights(state), H, idx, mask, loss_name, 0.05, 0.1, per_example=True)
    assert_tracks(factored_sgd(state, H, idx, mask, loss_name, 0.05, 0.1, per_example=True), W)


@pytest.mark.parametrize("loss_name", sorted(DENSE_LOSSES))
def test_loss_and_grad_h_equal_jax_grad_of_the_naive_loss(x64, loss_name):
    rng = np.random.default_rng(2)
    state = random_state(rng)
    W = F.weights(state)
    H, idx, mask = (x[0] for x in batches(rng, 1, 16))
    mask = mask.at[3].set(False)  # a point without positives
    dense_loss = DENSE_LOSSES[loss_name]
    want_loss = dense_loss(H @ W.T, idx, mask)
    want_grad = jax.grad(lambda H: dense_loss(H @ W.T, idx, mask).sum())(H)
    loss, grad_h = F.loss_and_grad_h(state, H, idx, mask, SPHERICAL_LOSSES[loss_name])
    np.testing.assert_allclose(loss, want_loss, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad_h, want_grad, rtol=1e-9, atol=1e-10)


def test_spherical_losses_need_only_q_s_and_the_positives(x64):
    """The dense form of squared error is ‖o − y‖² on the full output (a check of the family's algebra)."""
    rng = np.random.default_rng(3)
    logits = jnp.asarray(rng.normal(size=(4, 50)))
    idx = jnp.asarray([[1, 2], [3, 0], [7, 7], [0, 0]], jnp.int32)
    mask = jnp.asarray([[True, True], [True, False], [True, False], [False, False]])
    y = jnp.zeros((4, 50)).at[jnp.arange(4)[:, None], idx].max(mask.astype(jnp.float64))
    np.testing.assert_allclose(get_loss("squared_error")(logits, idx, mask), ((logits - y) ** 2).sum(-1))


def _ill_conditioned(rng, singular_values, labels=D):
    dim = len(singular_values)
    q1, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    q2, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    U = q1 @ np.diag(singular_values) @ q2
    return F.factorize(jnp.asarray(rng.normal(size=(labels, dim))), jnp.asarray(U), jnp.asarray(rng.normal(size=dim)))


@pytest.mark.parametrize("out_of_band, action", [([], 0), ([1e-3, 0.1, 30.0], 1),
                                                  ([1e-3, 0.01, 0.1, 0.3, 3.0, 10.0, 30.0, 100.0], 2)])
def test_stabilize_keeps_W_and_restores_the_band(x64, out_of_band, action):
    """In band: only U⁻ᵀ is re-inverted; a few out: rank-one corrections; many out: re-factorisation."""
    rng = np.random.default_rng(4)
    sv = rng.uniform(0.7, 1.4, DIM)
    sv[: len(out_of_band)] = out_of_band
    num_out = len(out_of_band)
    state = _ill_conditioned(rng, sv)
    W = F.weights(state)
    new, info = jax.jit(F.stabilize)(state)
    assert int(info.num_outside) == num_out and int(info.action) == action
    assert float(jnp.abs(F.weights(new) - W).max()) <= 1e-10
    new_sv = np.linalg.svd(np.asarray(new.U), compute_uv=False)
    assert new_sv.min() >= 0.5 - 1e-9 and new_sv.max() <= 2.0 + 1e-9
    np.testing.assert_allclose(new.Uinv_T, np.linalg.inv(np.asarray(new.U)).T, atol=1e-10)
    np.testing.assert_allclose(new.Q, W.T @ W, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(new.w_bar, W.sum(0), rtol=1e-10, atol=1e-8)


def test_stabilize_corrects_at_most_max_corrections_per_call(x64):
    rng = np.random.default_rng(5)
    sv = np.ones(DIM)
    sv[:4] = [0.01, 0.1, 0.3, 5.0]
    state = _ill_conditioned(rng, sv)
    new, info = F.stabilize(state, max_corrections=2)
    assert int(info.action) == 1
    remaining = np.sort(np.linalg.svd(np.asarray(new.U), compute_uv=False))
    # The two farthest out on a log scale (0.01, 0.1) are reset; 0.3 and 5.0 wait for the next call.
    np.testing.assert_allclose(remaining[[0, -1]], [0.3, 5.0], rtol=1e-9)
    np.testing.assert_allclose(remaining[1:-1], 1.0, rtol=1e-9)
    np.testing.assert_allclose(F.weights(new), F.weights(state), atol=1e-10)


def test_float32_drift_with_stabilization_stays_small(x64):
    """10k float32 Woodbury steps with periodic stabilisation stay within 1e-4 of float64 dense SGD."""
    labels, dim, m, steps, every, eta = D, DIM, 4, 10_000, 10, 0.05
    rng = np.random.default_rng(6)
    W0 = rng.normal(size=(labels, dim)) * 0.3
    H = rng.normal(size=(steps, m, dim)) / np.sqrt(dim)
    idx = rng.integers(0, labels, (steps, m, K)).astype(np.int32)
    mask = np.ones((steps, m, K), bool)
    W = naive_sgd(jnp.asarray(W0), jnp.asarray(H), jnp.asarray(idx), jnp.asarray(mask), "squared_error", eta, 0.0,
                  per_example=False)
    fn = SPHERICAL_LOSSES["squared_error"]
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    state = F.factorize(f32(W0), jnp.eye(dim, dtype=jnp.float32), jnp.zeros(dim, jnp.float32))

    def step(carry, batch):
        st, t = carry
        st = F.minibatch_update(st, *batch, fn, eta)[0]
        st = jax.lax.cond(t % every == every - 1, lambda s: F.stabilize(s)[0], lambda s: s, st)
        return (st, t + 1), jnp.linalg.svd(st.U, compute_uv=False)[-1]

    batches_ = (f32(H), jnp.asarray(idx), jnp.asarray(mask))
    (state, _), smallest = jax.jit(lambda st: jax.lax.scan(step, (st, 0), batches_))(state)
    assert float(smallest.min()) < 0.5  # U did leave the band between stabilisations
    scale = float(jnp.abs(W).max())
    assert float(jnp.abs(F.weights(state) - W).max()) / scale <= 1e-4
    assert float(jnp.abs(state.Q - W.T @ W).max()) / float(jnp.abs(W.T @ W).max()) <= 1e-4


@pytest.mark.parametrize("update", [F.minibatch_update, F.sequential_update])
def test_donated_update_does_not_copy_V(update):
    """The compiled step updates V's K·m rows in place: no O(D·d) copy of V (which would undo the method)."""
    rng = np.random.default_rng(8)
    state = random_state(rng, labels=4099, dtype=np.float32)
    H, idx, mask = (x[0] for x in batches(rng, 1, 8))
    fn = SPHERICAL_LOSSES["spherical_softmax"]
    step = jax.jit(lambda st, h, i, m: update(st, h, i, m, fn, 0.01), donate_argnums=0)
    hlo = step.lower(state, H.astype(jnp.float32), idx, mask).compile().as_text()
    v_shaped = [line for line in hlo.splitlines() if f"[4099,{DIM}]" in line]
    assert v_shaped  # the check below looks at the right shape
    assert not [line for line in v_shaped if " copy(" in line or " copy-start(" in line]


def test_topk_equals_dense_topk(x64):
    rng = np.random.default_rng(7)
    state = random_state(rng, labels=300)
    H = jnp.asarray(rng.normal(size=(5, DIM)))
    scores, ids = F.topk(state, H, 7, label_chunk=64)
    want_scores, want_ids = jax.lax.top_k(H @ F.weights(state).T, 7)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-12)
    np.testing.assert_array_equal(ids, want_ids)


def _train_steps(config, head, steps):
    config = config.copy_and_resolve_references()
    config.model.head.name = head
    data = load_dataset(config.data, config.seed)
    it = EpochIterator(Batcher(data.train, 0, 0), config.train.batch_size, config.seed)
    model = build_model(config, data.num_features, data.num_labels)
    tx, schedules = make_optimizer(config, steps)
    loss_fn = get_loss(config.loss.name)
    state = create_state(model, tx, it.batcher(it.rows_for_step(0)), loss_fn, jax.random.PRNGKey(0))
    step = make_train_step(model, tx, loss_fn, schedules, head_update(config, model, steps))
    return state, step, [it.batcher(it.rows_for_step(s)) for s in range(steps)]


def test_train_step_with_factored_head_equals_dense_head_with_sgd():
    """Through the head-update hook: encoder and W after 8 steps equal a dense head trained by SGD."""
    config = factored_table.get_config("smoke,loss=spherical_softmax")
    config.factored.weight_decay = config.train.optimizer.head.weight_decay = 0.01
    config.factored.learning_rate = config.train.optimizer.head.learning_rate = 0.05
    steps, d = 8, config.model.encoder.width
    fstate, fstep, batches_ = _train_steps(config, "factored", steps)
    dstate, dstep, _ = _train_steps(config, "dense", steps)
    W = F.weights(head_state(fstate.model_state))
    params = {"encoder": fstate.params["encoder"], "head": {"kernel": W[:, :d].T, "bias": W[:, d]}}
    dstate = dstate.replace(params=jax.tree.map(jnp.array, params))
    key = jax.random.PRNGKey(1)
    for batch in batches_:
        fstate, fmetrics = fstep(fstate, batch, key)
        dstate, dmetrics = dstep(dstate, batch, key)
    np.testing.assert_allclose(fmetrics["loss"], dmetrics["loss"], rtol=1e-5)
    np.testing.assert_allclose(fmetrics["lr_head"], dmetrics["lr_head"])
    W = F.weights(head_state(fstate.model_state))
    Wd = jnp.concatenate([dstate.params["head"]["kernel"].T, dstate.params["head"]["bias"][:, None]], 1)
    assert float(jnp.abs(W - Wd).max()) <= 1e-5 * float(jnp.abs(Wd).max())
    for a, b in zip(jax.tree.leaves(fstate.params["encoder"]), jax.tree.leaves(dstate.params["encoder"])):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("key, value, match", [
    ("loss.name", "softmax", "config.loss.name='softmax'.*spherical"),
    ("model.head.intermediate", 64, "config.model.head.intermediate=64"),
    ("aux.clusters", 8, "config.aux.clusters=8"),
    ("factored.mode", "online", "config.factored.mode='online'"),
    ("factored.singular_band", 1.0, "config.factored.singular_band=1.0"),
    ("factored.max_corrections", 0, "config.factored.max_corrections=0"),
    ("factored.refactorize_fraction", 0.0, "config.factored.refactorize_fraction=0.0"),
    ("factored.init_scale", 0.0, "config.factored.init_scale=0.0"),
    ("factored.weight_decay", -1.0, "config.factored.weight_decay=-1.0"),
    ("factored.stabilize_every", -1, "config.factored.stabilize_every=-1"),
])
def test_factored_head_refuses_what_it_cannot_train(key, value, match):
    config = factored_table.get_config("smoke")
    section, name = key.rsplit(".", 1)
    parent = config
    for part in section.split("."):
        parent = parent[part]
    parent[name] = value
    with pytest.raises(ValueError, match=match):
        validate(config)


def test_table_sweep_covers_both_data_sets_and_labels_rows_by_data():
    args = []
    factored_table.sweep(lambda arg: args.append(arg))
    assert len(args) == 8 and {a.split(",")[0] for a in args} == {"data=wordnet_hypernyms", "data=synthetic"}
    smoke = []
    factored_table.sweep(lambda arg: smoke.append(arg), "smoke")
    assert len(smoke) == 4 and all(a.startswith("data=synthetic") and a.endswith("smoke") for a in smoke)
    rows = {factored_table.table()["rows"](factored_table.get_config(a).to_dict()) for a in args}
    assert len(rows) == 8  # no two runs of the sweep share a row


def test_launch_with_factored_head_then_resume(tmp_path):
    """launch.py trains the factored head (per-example updates); a run whose last checkpoint is lost resumes from
    the one before and ends as the uninterrupted run did."""
    cmd = [sys.executable, "launch.py", "--config=configs/tables/factored.py:smoke", f"--workdir={tmp_path}",
           "--config.train.progress=none", "--config.train.steps=30", "--config.train.checkpoint_every=10",
           "--config.train.log_every=10", "--config.eval.write_predictions=false", "--config.factored.mode=per_example"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "P@1" in run.stdout
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [10, 20, 30] and lines[-1]["lr_head"] > 0
    first = json.loads((tmp_path / "results.json").read_text())
    shutil.rmtree(tmp_path / "checkpoints" / "30")  # as if killed between step 20's checkpoint and the end
    (tmp_path / "results.json").unlink()
    config = factored_table.get_config("smoke")
    config.factored.mode = "per_example"
    config.train.steps, config.train.checkpoint_every, config.train.log_every = 30, 10, 10
    config.train.progress, config.eval.write_predictions = "none", False
    results = loop.train_and_evaluate(config, str(tmp_path))
    assert results["resumed_from_step"] == 20 and results["steps"] == 30
    assert results["test"] == first["test"]


def test_benchmark_quick(tmp_path):
    out = tmp_path / "factored.json"
    run = subprocess.run([sys.executable, "-m", "experiments.benchmarks.factored", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    # --quick: D = 2000 and 20000 at d = 16, batch 16; each derived column is what the docstring defines.
    assert [(r["D"], r["d"], r["batch"]) for r in rows] == [(2000, 16, 16), (20000, 16, 16)]
    for row in rows:
        assert min(row[k] for k in ("factored_ms", "naive_ms", "stabilize_ms", "peak_rss_mb", "naive_peak_rss_mb")) > 0
        assert row["speedup"] == pytest.approx(row["naive_ms"] / row["factored_ms"], rel=1e-12)
        assert row["theory"] == row["D"] / (4 * row["d"])
        assert row["vs_smallest_D"] == pytest.approx(row["factored_ms"] / rows[0]["factored_ms"], rel=1e-12)
    assert rows[0]["vs_smallest_D"] == 1.0
