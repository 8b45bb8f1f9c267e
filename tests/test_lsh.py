"""LSH head (xcs.lsh): hash families, tables, candidates, exactness at full budget, row-sparse optimizer."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from tests.conftest import ROOT
from xcs.losses import binary_cross_entropy, softmax_cross_entropy
from xcs.lsh import head as lsh
from xcs.lsh.actions import exponential_steps
from xcs.lsh.hashing import HashSpec, hash_keys, hash_rows_chunked, init_hash
from xcs.lsh.row_optim import init_row_opt, row_update
from xcs.lsh.tables import FILL, RETRIEVED, TRUE, select_candidates

FAMILY_SPECS = [("wta", 4), ("dwta", 4), ("simhash", 2)]


def _cfg(family="dwta", L=60, dim=9, T=4, bits=6, S=8, M=16, C=32, insertion="reservoir", predict="candidates"):
    spec = None if family == "uniform" else HashSpec(family, dim, T, bits, 4, 8)
    return lsh.LSHConfig(spec, S, insertion, M, C, 16, predict, 64)


def _opt(name="adam", **kw):
    base = dict(name=name, learning_rate=0.1, weight_decay=0.0, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8)
    base.update(kw)
    return ConfigDict(base)


@pytest.mark.parametrize("family,window", FAMILY_SPECS)
def test_bucket_key_uses_exactly_bits_bits(family, window):
    spec = HashSpec(family, 33, 3, 6, window, 8)
    x = jax.random.normal(jax.random.PRNGKey(1), (3000, 33))
    keys = np.asarray(hash_keys(spec, init_hash(jax.random.PRNGKey(0), spec), x))
    assert keys.min() >= 0 and keys.max() < 2**6
    for t in range(3):  # all 2^bits buckets are reached, so no bit is lost (SLIDE's ln packing would)
        assert len(np.unique(keys[:, t])) == 2**6
        bits = (keys[:, t:t + 1] >> np.arange(6)) & 1
        assert np.all(bits.min(0) == 0) and np.all(bits.max(0) == 1)


@pytest.mark.parametrize("family,window", FAMILY_SPECS)
def test_identical_collide_and_similar_collide_more_than_random(family, window):
    spec = HashSpec(family, 33, 16, 6, window, 8)
    params = init_hash(jax.random.PRNGKey(2), spec)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.normal(k1, (500, 33))
    similar = x + 0.2 * jax.random.normal(k2, x.shape)
    other = jax.random.normal(k3, x.shape)
    kx = hash_keys(spec, params, x)
    assert bool((kx == hash_keys(spec, params, x + 0.0)).all())
    p_similar = float((kx == hash_keys(spec, params, similar)).mean())
    p_random = float((kx == hash_keys(spec, params, other)).mean())
    assert p_similar > p_random + 0.2, (p_similar, p_random)


def test_dwta_fills_empty_bins_of_sparse_vectors():
    spec = HashSpec("dwta", 64, 8, 6, 4, 16)
    params = init_hash(jax.random.PRNGKey(0), spec)
    rng = np.random.default_rng(0)
    x = np.zeros((2000, 64), np.float32)
    for row in x:  # 6 non-zeros of 64: most bins of 4 are empty
        row[rng.choice(64, 6, replace=False)] = rng.normal(size=6)
    keys = np.asarray(hash_keys(spec, params, jnp.asarray(x)))
    assert len(np.unique(keys[:, 0])) > 40  # codes borrowed from probed bins, not a constant
    assert (keys == np.asarray(hash_keys(spec, params, jnp.asarray(x)))).all()
    chunked = hash_rows_chunked(lambda r: hash_keys(spec, params, r), jnp.asarray(x), 300)
    np.testing.assert_array_equal(np.asarray(chunked), keys)


@pytest.mark.parametrize("insertion", ["fifo", "reservoir"])
def test_rehash_keeps_tables_consistent_with_weights(insertion):
    cfg = _cfg(L=300, S=4, insertion=insertion)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, 300, 8, True, "adam")
    moved = state.weights + jax.random.normal(jax.random.PRNGKey(1), state.weights.shape)
    state = lsh.rehash(cfg, state.replace(weights=moved), jax.random.PRNGKey(2))
    keys = np.asarray(hash_keys(cfg.spec, state.hash, moved))
    np.testing.assert_array_equal(np.asarray(state.label_keys), keys)
    buckets = np.asarray(state.buckets)
    for t in range(cfg.spec.num_tables):
        for b in range(cfg.spec.num_buckets):
            members = np.flatnonzero(keys[:, t] == b)
            held = buckets[t, b][buckets[t, b] >= 0]
            assert set(held) <= set(members) and len(set(held)) == len(held) == min(len(members), 4)
            if insertion == "fifo":  # the last inserted (largest ids) stay
                assert set(held) == set(members[-4:])
    assert float(lsh.drift(cfg, state, jax.random.PRNGKey(3), 50)) == 0.0
    rebuilt = lsh.rebuild(cfg, state, jax.random.PRNGKey(4))
    assert not np.array_equal(np.asarray(rebuilt.label_keys), keys)


def test_select_candidates_matches_naive():
    rng = np.random.default_rng(0)
    L, budget = 40, 12
    ids = rng.integers(-1, L, (5, 30)).astype(np.int32)
    tiers = rng.choice([FILL, RETRIEVED, TRUE], (5, 30)).astype(np.int32)
    cand, valid = select_candidates(jnp.asarray(ids), jnp.asarray(tiers), budget, L, jax.random.PRNGKey(0))
    cand, valid = np.asarray(cand), np.asarray(valid)
    for r in range(5):
        best = {}
        for i, t in zip(ids[r], tiers[r]):
            if i >= 0:
                tier, count = best.get(i, (-1, 0))
                best[i] = (max(tier, t), count + (t == RETRIEVED))
        kept = cand[r][valid[r]]
        assert list(kept) == sorted(set(kept)) and set(kept) <= set(best)
        assert np.all(cand[r][~valid[r]] == L) and valid[r].sum() == min(budget, len(best))
        # Nothing left out ranks above anything kept (by tier, then retrieval count).
        worst_kept = min(best[i] for i in kept)
        assert all(best[i] <= worst_kept for i in set(best) - set(kept))


def _dense_reference(weights, h, label_idx, label_mask, loss):
    h_aug = lsh.augment(h, True)

    def f(h, w):
        return loss(lsh.augment(h, True) @ w.T, label_idx, label_mask).mean()

    del h_aug
    return jax.value_and_grad(f, argnums=(0, 1))(h, weights)


@pytest.mark.parametrize("family", ["dwta", "simhash", "uniform"])
@pytest.mark.parametrize("loss", [softmax_cross_entropy, binary_cross_entropy])
def test_full_budget_equals_full_loss_and_gradients(family, loss):
    L, d, B, Y = 50, 8, 6, 3
    cfg = _cfg(family, L=L, dim=d + 1, C=L)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    state = state.replace(weights=state.weights + 0.3 * jax.random.normal(jax.random.PRNGKey(5), state.weights.shape))
    rng = np.random.default_rng(1)
    h = jnp.asarray(rng.normal(size=(B, d)), jnp.float32)
    label_idx = jnp.asarray(rng.integers(0, L, (B, Y)), jnp.int32)
    label_mask = jnp.asarray(rng.random((B, Y)) < 0.7).at[:, 0].set(True)
    per_point, grad_h, cand, valid, grad_rows = lsh.loss_and_grads(cfg, state, h, label_idx, label_mask, loss,
                                                                   True, jax.random.PRNGKey(2))
    assert bool(valid.all()) and np.array_equal(np.asarray(cand), np.arange(L))
    (ref_loss, (ref_gh, ref_gw)) = _dense_reference(state.weights, h, label_idx, label_mask, loss)
    np.testing.assert_allclose(float(per_point.mean()), float(ref_loss), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad_h), np.asarray(ref_gh), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad_rows), np.asarray(ref_gw), rtol=1e-4, atol=1e-6)


def test_true_labels_always_candidates_and_ids_in_range():
    L, d, B, Y = 500, 8, 16, 4
    cfg = _cfg("dwta", L=L, dim=d + 1, C=B * Y, M=20)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    rng = np.random.default_rng(2)
    for seed in range(3):
        h_aug = lsh.augment(jnp.asarray(rng.normal(size=(B, d)), jnp.float32), True)
        label_idx = jnp.asarray(rng.integers(0, L, (B, Y)), jnp.int32)
        label_mask = jnp.asarray(rng.random((B, Y)) < 0.8)
        cand, valid = lsh.train_candidates(cfg, state, h_aug, label_idx, label_mask, jax.random.PRNGKey(seed))
        cand, valid = np.asarray(cand), np.asarray(valid)
        assert set(np.asarray(label_idx)[np.asarray(label_mask)]) <= set(cand[valid])
        assert np.all((cand[valid] >= 0) & (cand[valid] < L)) and valid.sum() == len(set(cand[valid]))
        pc, pv = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(seed))
        pc, pv = np.asarray(pc), np.asarray(pv)
        assert np.all((pc[pv] >= 0) & (pc[pv] < L)) and pv.sum(1).max() <= 20
        _, ids = lsh.topk(cfg, state, h_aug[:, :d], 5, True, jax.random.PRNGKey(seed))
        assert np.all((np.asarray(ids) >= -1) & (np.asarray(ids) < L))
    with pytest.raises(ValueError, match="config.lsh.batch_candidates"):
        lsh.train_candidates(_cfg(L=L, dim=d + 1, C=B * Y - 1), state, h_aug, label_idx, label_mask,
                             jax.random.PRNGKey(0))


def test_rescored_topk_is_exact_over_the_candidates():
    L, d, B = 200, 8, 10
    cfg = _cfg("simhash", L=L, dim=d + 1, M=30)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    h = jax.random.normal(jax.random.PRNGKey(1), (B, d))
    h_aug = lsh.augment(h, True)
    cand, valid = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(0))
    scores, ids = lsh.rescore(state.weights, h_aug, cand, valid, 5, 3)
    dense = np.asarray(h_aug @ state.weights.T)
    for b in range(B):
        c = np.asarray(cand[b])[np.asarray(valid[b])]
        best = c[np.argsort(-dense[b, c])[:5]]
        np.testing.assert_array_equal(np.asarray(ids[b]), best)
        np.testing.assert_allclose(np.asarray(scores[b]), dense[b, best], rtol=1e-5)
    exact = lsh.LSHConfig(cfg.spec, 8, "fifo", 30, 32, 16, "exact", 64)
    _, ids = lsh.topk(exact, state, h, 5, True, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(ids), np.argsort(-dense, axis=1)[:, :5])
    # candidate_recall against a set computation, on masked targets that are partly in the block.
    rng = np.random.default_rng(3)
    targets = np.where(rng.random((B, 6)) < 0.5, np.asarray(cand)[:, :6], rng.integers(0, L, (B, 6)))
    mask = rng.random((B, 6)) < 0.8
    recall = np.asarray(lsh.candidate_recall(cand, valid, jnp.asarray(targets, jnp.int32), jnp.asarray(mask)))
    for b in range(B):
        block = set(np.asarray(cand[b])[np.asarray(valid[b])])
        t = targets[b][mask[b]]
        expected = np.mean([x in block for x in t]) if len(t) else 0.0
        np.testing.assert_allclose(recall[b], expected, rtol=1e-6)


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adam", {"weight_decay": 0.01}), ("adamw", {"weight_decay": 0.1}),
                                     ("sgd", {}), ("sgd", {"momentum": 0.0})])
def test_row_update_equals_optax_when_all_rows_touched_and_is_lazy(name, kw):
    cfg = _opt(name, **kw)
    w = jax.random.normal(jax.random.PRNGKey(0), (7, 3))
    opt = init_row_opt(w, name)
    if name == "adamw":
        tx = optax.adamw(0.1, b1=0.9, b2=0.999, eps=1e-8, weight_decay=cfg.weight_decay)
    elif name == "adam":
        tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.adam(0.1))
    else:
        tx = optax.chain(optax.add_decayed_weights(0.0), optax.sgd(0.1, momentum=cfg.momentum or None))
    ref, ref_state = w, tx.init(w)
    rows = jnp.asarray([4, 0, 2, 6, 1, 3, 5])
    mine = w
    for i in range(3):
        g = jax.random.normal(jax.random.PRNGKey(10 + i), (7, 3))
        updates, ref_state = tx.update(g, ref_state, ref)
        ref = optax.apply_updates(ref, updates)
        mine, opt = row_update(mine, opt, rows, jnp.ones(7, bool), g[rows], 0.1, cfg)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(ref), rtol=1e-5, atol=1e-6)
    # Rows not given (or not valid) are not touched at all.
    before = mine
    mine, _ = row_update(mine, opt, jnp.asarray([1, 2]), jnp.asarray([True, False]), jnp.ones((2, 3)), 0.1, cfg)
    changed = np.flatnonzero(np.any(np.asarray(mine) != np.asarray(before), axis=1))
    assert list(changed) == [1]


def test_exponential_rehash_steps():
    assert sorted(exponential_steps(10, 2.0, 100)) == [10, 30, 70]
    assert sorted(exponential_steps(5, 1.0, 20)) == [5, 10, 15, 20]


def test_launch_smoke_wta_drift(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/lsh.py:smoke,family=wta,rehash=drift",
           f"--workdir={tmp_path}", "--config.train.progress=none", "--config.train.steps=12",
           "--config.lsh.rehash_interval=4"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "P@1" in run.stdout
    with open(os.path.join(tmp_path, "results.json")) as f:
        test = json.load(f)["test"]
    assert 0.0 <= test["candidate_recall_true"] <= 1.0 and 0.0 < test["candidate_recall@5"] <= 1.0
    assert test["candidate_recall_true"] <= test["candidate_recall_true_trained"] <= 1.0  # configs/lsh.py: trained


@pytest.mark.parametrize("overrides", [
    # simhash, growing rehash intervals, fifo buckets, new hash functions, BCE, AdamW on the rows
    # simple-LSH rows, tables of trained labels, drift checks against the stored row scale
    ["--config=configs/lsh.py:smoke,family=simhash,rehash=drift", "--config.lsh.mips=simple",
     "--config.lsh.hash_labels=trained", "--config.lsh.rehash_interval=2"],
    ["--config=configs/lsh.py:smoke,family=simhash,rehash=exponential", "--config.lsh.insertion=fifo",
     "--config.lsh.rebuild_interval=5", "--config.loss.name=bce", "--config.train.optimizer.head.name=adamw",
     "--config.lsh.rehash_interval=2"],
    # sampled softmax with uniform negatives (no tables, exact prediction), SGD with momentum on the rows
    ["--config=configs/lsh.py:smoke,family=uniform", "--config.train.optimizer.head.name=sgd",
     "--config.train.optimizer.head.momentum=0.9"],
])
def test_launch_smoke_other_options(tmp_path, overrides):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), *overrides, f"--workdir={tmp_path}",
           "--config.train.progress=none", "--config.train.steps=8"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(os.path.join(tmp_path, "results.json")) as f:
        test = json.load(f)["test"]
    assert 0.0 <= test["P@1"] <= 100.0 and 0.0 <= test["candidate_recall_true"] <= 1.0  # P@k in percent


def test_lsh_table_sweep_builds_every_run(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/tables/lsh.py", "--sweep", "--dry_run",
           f"--workdir={tmp_path}"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "6 runs" in run.stdout + run.stderr
    from configs.tables import lsh as table
    for method in table.METHODS:
        config = table.get_config(f"method={method}")
        assert config.data.synthetic.num_labels == 500_000
        assert config.model.head.name == ("dense" if method == "dense" else "lsh")
        c = config.lsh
        if method not in ("dense", "uniform"):  # the row's hash family accepts its key length (else ValueError)
            HashSpec(c.family, 65, c.num_tables, c.bits, c.window, c.probes)
    with pytest.raises(ValueError, match="method="):
        table.get_config("method=nope")
