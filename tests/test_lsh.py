"""LSH head (xcs.lsh): hash families, tables, candidates, exactness at full budget, row-sparse optimizer."""

import dataclasses
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
from xcs.lsh.tables import FILL, RETRIEVED, TRUE, select_candidates
from xcs.nn.row_optim import init_row_opt, row_update

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


# ---------------------------------------------------------------------------------------------------------------
# References written here from the families' definitions (numpy), not from xcs.lsh.hashing: codes recomputed by
# hand from the drawn permutations / hyperplanes, and SimHash's bit agreement against Charikar's 1 - θ/π.


_jit_hash_keys = jax.jit(hash_keys, static_argnums=0)  # one compiled program per shape instead of op by op


def _pack_by_hand(codes, bits_per_code):
    """codes [N, T, C] -> keys [N, T]: code c of a table occupies bits c·b .. c·b + b - 1 (the documented layout)."""
    keys = np.zeros(codes.shape[:2], np.int64)
    for c in range(codes.shape[2]):
        keys += codes[:, :, c].astype(np.int64) << (c * bits_per_code)
    return keys


def _wta_codes_by_hand(x, coords):
    """Yagnik et al.: code = position of the largest of the window's coordinates (first one on a tie)."""
    x = np.asarray(x, np.float64)
    n, (T, C, _) = x.shape[0], coords.shape
    codes = np.zeros((n, T, C), np.int64)
    for i in range(n):
        for t in range(T):
            for c in range(C):
                codes[i, t, c] = int(np.argmax(x[i, coords[t, c]]))
    return codes


def _dwta_codes_by_hand(x, coords, probe):
    """Chen & Shrivastava: the argmax among the bin's non-zero entries; an empty bin takes the code of the first
    non-empty bin of its probe sequence probe[0, bin], probe[1, bin], ...; code 0 if none is non-empty."""
    x = np.asarray(x, np.float64)
    n, (T, C, _) = x.shape[0], coords.shape
    bins = coords.reshape(T * C, -1)
    codes = np.zeros((n, T * C), np.int64)
    for i in range(n):
        own = []
        for b in range(T * C):
            vals = x[i, bins[b]]
            nz = np.flatnonzero(vals != 0)
            own.append(int(nz[np.argmax(vals[nz])]) if len(nz) else None)
        for b in range(T * C):
            code = own[b]
            for p in range(probe.shape[0]):
                if code is not None:
                    break
                code = own[probe[p, b]]
            codes[i, b] = 0 if code is None else code
    return codes.reshape(n, T, C)


def _sparse_rows(rng, n, dim, nnz):
    x = np.zeros((n, dim), np.float32)
    for row in x:
        row[rng.choice(dim, nnz, replace=False)] = rng.normal(size=nnz)
    return x


@pytest.mark.parametrize("family", ["wta", "dwta"])
def test_wta_and_dwta_keys_equal_codes_recomputed_by_hand(family):
    """Dense rows, and sparse rows whose dwta bins are mostly empty (so the probe sequence decides)."""
    spec = HashSpec(family, 40, 6, 6, 4, 8)
    params = init_hash(jax.random.PRNGKey(7), spec)
    coords = np.asarray(params["coords"])
    assert coords.shape == (6, 3, 4)
    rng = np.random.default_rng(7)
    dense = rng.normal(size=(150, 40)).astype(np.float32)
    sparse = _sparse_rows(rng, 150, 40, 5)  # 5 non-zeros of 40: about 60 % of the bins of 4 empty
    sparse[0] = 0.0  # no non-zero bin to borrow from: all codes 0
    for x in (dense, sparse):
        got = np.asarray(_jit_hash_keys(spec, params, jnp.asarray(x)))
        if family == "wta":
            codes = _wta_codes_by_hand(x, coords)
        else:
            codes = _dwta_codes_by_hand(x, coords, np.asarray(params["probe"]))
        np.testing.assert_array_equal(got, _pack_by_hand(codes, 2))
    empty = (sparse[:, coords.reshape(18, 4)] == 0).all(-1)
    assert 0.4 < empty.mean() < 0.8  # the borrowing path was exercised (for wta the zeros simply compete)
    assert np.all(got[0] == 0)


def test_wta_windows_are_prefixes_of_random_permutations_and_dwta_bins_cut_whole_permutations():
    dim, window = 33, 8
    wta = np.asarray(init_hash(jax.random.PRNGKey(0), HashSpec("wta", dim, 64, 12, window, 8))["coords"])
    windows = wta.reshape(-1, window)  # 256 windows of 8
    assert windows.min() >= 0 and windows.max() < dim
    assert all(len(set(w)) == window for w in windows)  # drawn without replacement: a permutation's prefix
    # Uniform over coordinates, and over positions within the window (the code is a position): a chi-square
    # statistic with dim - 1 degrees of freedom, allowed 5 standard deviations (sd = sqrt(2 dof)) above its mean.
    for counts in [np.bincount(windows.ravel(), minlength=dim)] + [np.bincount(windows[:, j], minlength=dim)
                                                                      for j in (0, window - 1)]:
        expected = counts.sum() / dim
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < (dim - 1) + 5 * np.sqrt(2 * (dim - 1)), chi2
    assert len({tuple(w) for w in windows}) == len(windows)  # independent draws, not one window repeated
    spec = HashSpec("dwta", 40, 6, 6, 4, 8)  # 6 * 3 bins of 4 = 72 coordinates: one whole permutation of 40 + 32
    dwta = np.asarray(init_hash(jax.random.PRNGKey(0), spec)["coords"]).ravel()
    assert sorted(dwta[:40]) == list(range(40)) and len(set(dwta[40:])) == 32 and dwta[40:].max() < 40


def test_simhash_keys_are_the_signs_of_the_drawn_hyperplanes():
    spec = HashSpec("simhash", 20, 5, 7)
    params = init_hash(jax.random.PRNGKey(3), spec)
    planes = np.asarray(params["planes"], np.float64).reshape(20, 5, 7)  # [D, T, bits]: table t's bits
    x = np.random.default_rng(3).normal(size=(100, 20)).astype(np.float32)
    codes = (np.einsum("nd,dtc->ntc", x.astype(np.float64), planes) > 0).astype(np.int64)
    np.testing.assert_array_equal(np.asarray(_jit_hash_keys(spec, params, jnp.asarray(x))), _pack_by_hand(codes, 1))


def test_simhash_bit_agreement_is_one_minus_angle_over_pi():
    """Charikar 2002: a random hyperplane separates two vectors at angle θ with probability θ/π.

    Over the joint draw of the hyperplanes and of pairs at angle θ with uniformly random orientation, the
    n = pairs × planes agreement indicators are pairwise uncorrelated Bernoulli(1 − θ/π) (two indicators share
    at most a pair or a plane, and given that one the other is drawn afresh), so the agreement count has the
    binomial variance n p (1 − p); the observed rate must lie within 5 of its standard deviations.
    """
    dim, tables, bits, pairs = 33, 16, 6, 400
    spec = HashSpec("simhash", dim, tables, bits)
    params = init_hash(jax.random.PRNGKey(11), spec)
    rng = np.random.default_rng(11)
    shifts = np.arange(bits)
    for theta in (np.pi / 12, np.pi / 3, np.pi / 2, 3 * np.pi / 4, 0.95 * np.pi):
        u = rng.normal(size=(pairs, dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        z = rng.normal(size=(pairs, dim))
        z -= (z * u).sum(1, keepdims=True) * u
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        v = np.cos(theta) * u + np.sin(theta) * z
        np.testing.assert_allclose(np.arccos(np.clip((u * v).sum(1), -1, 1)), theta, atol=1e-6)
        ku, kv = (np.asarray(_jit_hash_keys(spec, params, jnp.asarray(a, jnp.float32))) for a in (u, 3.0 * v))
        agree = ((ku[..., None] >> shifts) & 1) == ((kv[..., None] >> shifts) & 1)  # [pairs, T, bits]
        p, n = 1.0 - theta / np.pi, agree.size
        assert abs(agree.mean() - p) <= 5 * np.sqrt(p * (1 - p) / n), (theta, agree.mean(), p)


def _numpy_family(family, spec, rng):
    """A fresh numpy draw of the family (numpy permutations / hyperplanes): x [N, D] -> keys [N, T], codes by hand."""
    T, C = spec.num_tables, spec.codes_per_table
    if family == "simhash":
        planes = rng.normal(size=(spec.dim, T, C))
        return lambda x: _pack_by_hand((np.einsum("nd,dtc->ntc", x, planes) > 0).astype(np.int64), 1)
    if family == "wta":
        coords = np.stack([rng.permutation(spec.dim)[: spec.window] for _ in range(T * C)])
    else:  # dwta: consecutive bins of concatenated permutations
        need = T * C * spec.window
        coords = np.concatenate([rng.permutation(spec.dim) for _ in range(-(-need // spec.dim))])[:need]
    coords = coords.reshape(T, C, spec.window)
    return lambda x: _pack_by_hand(np.asarray(x)[:, coords].argmax(-1), spec.bits_per_code)  # dense: no empty bin


def _within_5_standard_errors(got, want):
    """Per-pair rates (over tables): their mean difference within 5 standard errors (pairs are independent)."""
    d = got - want
    return abs(d.mean()) <= 5 * d.std(ddof=1) / np.sqrt(len(d)) + 1e-12, (got.mean(), want.mean())


@pytest.mark.parametrize("family,window", FAMILY_SPECS)
def test_invariances_and_collision_rates_equal_an_independent_draw_of_the_family(family, window):
    """What a family ignores leaves its keys unchanged, what it sees changes them; and the module's key
    collision rates of similar and of unrelated pairs equal those of the family drawn afresh in numpy (wta,
    dwta) or Charikar's (1 − θ/π)^bits (simhash), within 5 standard errors of the per-pair differences."""
    spec = HashSpec(family, 33, 16, 6, window, 8)
    params = init_hash(jax.random.PRNGKey(2), spec)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 33)).astype(np.float32)
    keys = lambda a: np.asarray(_jit_hash_keys(spec, params, jnp.asarray(a, jnp.float32)))  # noqa: E731
    kx = keys(x)
    assert np.array_equal(kx, keys(2.5 * x))  # every family ignores a positive scale
    # Rank hashes see only the order within each window (x³ keeps it, and keeps dwta's zeros); SimHash is not one.
    assert np.array_equal(kx, keys(x**3)) == (family != "simhash")
    assert (kx != keys(-x)).mean() > 0.9  # the keys do depend on x
    similar = x + 0.3 * rng.normal(size=x.shape)
    other = rng.normal(size=x.shape)
    rates = []
    for y in (similar, other):
        got = (kx == keys(y)).mean(1)
        if family == "simhash":
            cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
            want = (1 - np.arccos(np.clip(cos, -1, 1)) / np.pi) ** spec.bits
        else:
            fresh = _numpy_family(family, spec, np.random.default_rng(4))
            want = (fresh(x) == fresh(y)).mean(1)
        ok, means = _within_5_standard_errors(got, want)
        assert ok, means
        rates.append(got.mean())
    assert rates[0] > rates[1] + 0.2, rates


def test_chunked_hashing_equals_unchunked_on_sparse_vectors():
    spec = HashSpec("dwta", 64, 8, 6, 4, 16)
    params = init_hash(jax.random.PRNGKey(0), spec)
    x = jnp.asarray(_sparse_rows(np.random.default_rng(0), 2000, 64, 6))  # 6 non-zeros of 64: most bins empty
    chunked = hash_rows_chunked(lambda r: hash_keys(spec, params, r), x, 300)
    np.testing.assert_array_equal(np.asarray(chunked), np.asarray(hash_keys(spec, params, x)))


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
    # A block smaller than the batch's label slots grows to them: every true label stays a candidate.
    cand, valid = lsh.train_candidates(_cfg(L=L, dim=d + 1, C=B * Y - 1), state, h_aug, label_idx, label_mask,
                                       jax.random.PRNGKey(0))
    assert cand.shape == (min(B * Y, L),)
    assert set(np.asarray(label_idx)[np.asarray(label_mask)]) <= set(np.asarray(cand)[np.asarray(valid)])


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


def test_knn_reads_of_the_exact_head_match_numpy():
    """What the kNN mix reads of an lsh head with predict=exact: the logits of any labels and the log-partition."""
    L, d, B = 300, 8, 7
    cfg = _cfg("uniform", L=L, dim=d + 1, predict="exact")
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    w = np.asarray(state.weights) + np.random.default_rng(1).normal(size=state.weights.shape).astype(np.float32)
    state = state.replace(weights=jnp.asarray(w))
    h = np.random.default_rng(2).normal(size=(B, d)).astype(np.float32)
    ids = np.random.default_rng(3).integers(0, L, (B, 11)).astype(np.int32)
    logits = h @ w[:, :d].T + w[:, d]  # rows [w, b]
    got = np.asarray(lsh.label_logits(state, jnp.asarray(h), jnp.asarray(ids), True))
    np.testing.assert_allclose(got, np.take_along_axis(logits, ids, axis=1), rtol=1e-5, atol=1e-5)
    scores, top, lse = lsh.exact_topk(cfg, state, jnp.asarray(h), 5, True, with_logsumexp=True)
    np.testing.assert_allclose(np.asarray(lse), np.log(np.exp(logits).sum(1)), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(top), np.argsort(-logits, axis=1)[:, :5])


def test_block_size_is_the_largest_of_the_budget_the_share_and_the_label_slots():
    cfg = dataclasses.replace(_cfg("uniform", L=1000, C=64), candidate_share=0.25)
    assert lsh.block_size(cfg, 8, 4, 1000) == 250  # a quarter of the labels
    assert lsh.block_size(cfg, 100, 4, 1000) == 400  # the batch's label slots
    assert lsh.block_size(dataclasses.replace(cfg, candidate_share=0.0), 8, 4, 1000) == 64
