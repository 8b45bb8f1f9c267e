"""LSH retrieval mechanisms (xcs.lsh): codes and multi-probe keys against naive numpy, probed lookup,
tables of trained labels only, the final rehash."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lsh as lsh_config
from xcs.lsh import head as lsh
from xcs.lsh.actions import lsh_actions
from xcs.lsh.hashing import HashSpec, hash_keys, init_hash, probe_keys
from xcs.lsh.tables import lookup
from xcs.registry import build_model

FAMILY_SPECS = [("wta", 4), ("dwta", 4), ("simhash", 2)]


def _naive_codes(spec, params, x):
    """(codes, runner-up, margin) [N, T, C] by plain loops over bins."""
    T, C = spec.num_tables, spec.codes_per_table
    if spec.family == "simhash":
        proj = (x @ np.asarray(params["planes"])).reshape(len(x), T, C)
        codes = (proj > 0).astype(int)
        return codes, 1 - codes, np.abs(proj)
    coords = np.asarray(params["coords"]).reshape(T * C, -1)
    n = len(x)
    codes, runner, margin = np.zeros((n, T * C), int), np.zeros((n, T * C), int), np.full((n, T * C), np.inf)
    empty = np.zeros((n, T * C), bool)
    for i in range(n):
        for b in range(T * C):
            v = x[i, coords[b]].astype(np.float64)
            if spec.family == "dwta":
                v = np.where(v != 0, v, -np.inf)
            order = np.argsort(-v, kind="stable")
            if v[order[0]] == -np.inf:
                empty[i, b] = True
                continue
            codes[i, b], runner[i, b] = order[0], order[1]
            if np.isfinite(v[order[1]]):
                margin[i, b] = v[order[0]] - v[order[1]]
    if spec.family == "dwta":  # borrow from the first non-empty probed bin
        probe = np.asarray(params["probe"])
        for i in range(n):
            for b in np.flatnonzero(empty[i]):
                src = next((p for p in probe[:, b] if not empty[i, p]), None)
                if src is None:
                    codes[i, b], runner[i, b], margin[i, b] = 0, 0, np.inf
                else:
                    codes[i, b], runner[i, b], margin[i, b] = codes[i, src], runner[i, src], margin[i, src]
    return tuple(a.reshape(n, T, C) for a in (codes, runner, margin))


def _sparse_rows(n, dim, nnz, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, dim), np.float32)
    for row in x:
        row[rng.choice(dim, nnz, replace=False)] = rng.normal(size=nnz)
    return x


@pytest.mark.parametrize("family,window", FAMILY_SPECS)
def test_keys_and_probe_keys_match_naive(family, window):
    spec = HashSpec(family, 24, 3, 6, window, 8)
    params = init_hash(jax.random.PRNGKey(0), spec)
    x = _sparse_rows(40, 24, 5, 1) if family == "dwta" else np.random.default_rng(1).normal(size=(40, 24))
    x = x.astype(np.float32)
    codes, runner, margin = _naive_codes(spec, params, x)
    shifts = np.arange(spec.codes_per_table) * spec.bits_per_code
    keys = (codes << shifts).sum(-1)
    np.testing.assert_array_equal(np.asarray(hash_keys(spec, params, jnp.asarray(x))), keys)
    extra = spec.codes_per_table - 1
    probed = np.asarray(probe_keys(spec, params, jnp.asarray(x), extra))
    assert probed.shape == (40, 3, 1 + extra)
    np.testing.assert_array_equal(probed[..., 0], keys)
    for i in range(40):
        for t in range(3):
            order = np.argsort(margin[i, t], kind="stable")[:extra]  # least certain codes first
            want = [keys[i, t] + ((runner[i, t, c] - codes[i, t, c]) << shifts[c]) for c in order]
            finite = np.isfinite(margin[i, t, order])  # ties at margin inf may come in any order
            np.testing.assert_array_equal(probed[i, t, 1:][finite], np.array(want)[finite])
            assert sorted(probed[i, t, 1:]) == sorted(want)
    with pytest.raises(ValueError, match="config.lsh.multiprobe"):
        probe_keys(spec, params, jnp.asarray(x), spec.codes_per_table + 1)


@pytest.mark.parametrize("family,window", [("wta", 4), ("simhash", 2)])
def test_multiprobe_finds_similar_vectors_more_often(family, window):
    spec = HashSpec(family, 33, 8, 6, window, 8)
    params = init_hash(jax.random.PRNGKey(2), spec)
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(k1, (500, 33))
    similar = x + 0.5 * jax.random.normal(k2, x.shape)
    target = hash_keys(spec, params, similar)[..., None]
    hit0 = float((probe_keys(spec, params, x, 0) == target).any(-1).mean())
    hit2 = float((probe_keys(spec, params, x, 2) == target).any(-1).mean())
    assert hit2 > hit0 + 0.1, (hit0, hit2)


def test_probed_lookup_matches_naive():
    rng = np.random.default_rng(0)
    buckets = rng.integers(-1, 100, (3, 16, 4)).astype(np.int32)
    keys = rng.integers(0, 16, (5, 3, 2)).astype(np.int32)
    found = np.asarray(lookup(jnp.asarray(buckets), jnp.asarray(keys)))
    want = np.stack([np.concatenate([buckets[t, keys[b, t, p]] for t in range(3) for p in range(2)])
                     for b in range(5)])
    np.testing.assert_array_equal(found, want)
    np.testing.assert_array_equal(np.asarray(lookup(jnp.asarray(buckets), jnp.asarray(keys[..., 0]))),
                                  np.stack([np.concatenate([buckets[t, keys[b, t, 0]] for t in range(3)])
                                            for b in range(5)]))


def _cfg(L, dim, hash_labels, multiprobe=0, M=16, C=32, family="dwta"):
    return lsh.LSHConfig(HashSpec(family, dim, 4, 6, 4, 8), 4, "reservoir", M, C, 16, "candidates", 64,
                         multiprobe, hash_labels)


def test_tables_of_trained_labels_only():
    L, d = 300, 8
    cfg = _cfg(L, d + 1, "trained", multiprobe=1)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    assert not bool(state.trained.any()) and bool((state.buckets < 0).all())  # nothing trained yet
    rng = np.random.default_rng(1)
    label_idx = rng.integers(0, L, (20, 3)).astype(np.int32)
    label_mask = rng.random((20, 3)) < 0.7
    state = lsh.mark_trained(state, jnp.asarray(label_idx), jnp.asarray(label_mask))
    trained = np.zeros(L, bool)
    trained[label_idx[label_mask]] = True
    np.testing.assert_array_equal(np.asarray(state.trained), trained)
    state = lsh.rehash(cfg, state, jax.random.PRNGKey(2))
    keys, buckets = np.asarray(state.label_keys), np.asarray(state.buckets)
    for t in range(4):
        for b in range(cfg.spec.num_buckets):
            members = np.flatnonzero((keys[:, t] == b) & trained)
            held = buckets[t, b][buckets[t, b] >= 0]
            assert set(held) <= set(members) and len(set(held)) == len(held) == min(len(members), 4)
    h_aug = lsh.augment(jnp.asarray(rng.normal(size=(10, d)), jnp.float32), True)
    cand, valid = lsh.predict_candidates(cfg, state, h_aug, jax.random.PRNGKey(3))
    assert set(np.asarray(cand)[np.asarray(valid)]) <= set(np.flatnonzero(trained))  # no random fill
    # hash_labels=all: the same tables hold untrained labels too.
    everything = lsh.rehash(_cfg(L, d + 1, "all"), state, jax.random.PRNGKey(2))
    assert not set(np.asarray(everything.buckets).ravel()) - {-1} <= set(np.flatnonzero(trained))


@pytest.mark.parametrize("hash_labels,multiprobe", [("trained", 2), ("all", 1)])
def test_full_budget_exact_with_new_options(hash_labels, multiprobe):
    from xcs.losses import softmax_cross_entropy
    L, d, B, Y = 40, 8, 6, 3
    cfg = _cfg(L, d + 1, hash_labels, multiprobe=multiprobe, C=L)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, True, "adam")
    rng = np.random.default_rng(1)
    h = jnp.asarray(rng.normal(size=(B, d)), jnp.float32)
    label_idx = jnp.asarray(rng.integers(0, L, (B, Y)), jnp.int32)
    label_mask = jnp.asarray(rng.random((B, Y)) < 0.7).at[:, 0].set(True)
    state = lsh.rehash(cfg, lsh.mark_trained(state, label_idx, label_mask), jax.random.PRNGKey(4))
    per_point, grad_h, cand, valid, grad_rows = lsh.loss_and_grads(cfg, state, h, label_idx, label_mask,
                                                                   softmax_cross_entropy, True, jax.random.PRNGKey(2))
    assert bool(valid.all()) and np.array_equal(np.asarray(cand), np.arange(L))

    def dense(h, w):
        return softmax_cross_entropy(lsh.augment(h, True) @ w.T, label_idx, label_mask).mean()

    ref, (ref_gh, ref_gw) = jax.value_and_grad(dense, argnums=(0, 1))(h, state.weights)
    np.testing.assert_allclose(float(per_point.mean()), float(ref), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad_h), np.asarray(ref_gh), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad_rows), np.asarray(ref_gw), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rehash,total,final", [("fixed", 23, True), ("fixed", 20, False), ("drift", 20, True),
                                                ("none", 20, False)])
def test_tables_rebuilt_after_the_last_step(rehash, total, final):
    config = lsh_config.get_config(f"smoke,rehash={rehash}")
    config.lsh.rehash_interval, config.lsh.rebuild_interval = 10, 0
    model = build_model(config, 100, 50)
    actions = lsh_actions(config, model, total)
    names = [a.name for a in actions if a.due(total)]
    assert ("lsh_final_rehash" in names) == final
    if rehash == "fixed":
        assert names == (["lsh_rehash"] if total % 10 == 0 else ["lsh_final_rehash"])  # rehashed once, not twice


def test_config_refuses_bad_new_keys():
    from xcs.lsh.layer import lsh_config as make_cfg
    for key, value, match in [("hash_labels", "seen", "config.lsh.hash_labels"),
                              ("multiprobe", 9, "config.lsh.multiprobe")]:
        config = lsh_config.get_config("smoke")
        config.lsh[key] = value
        with pytest.raises(ValueError, match=match):
            make_cfg(config, 33)


def test_mips_transform_turns_inner_products_into_angles():
    """cos(mips_rows(r), mips_queries(q)) = q·r / (|q| M), M the largest row norm, for fresh rows."""
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(40, 7)) * rng.uniform(0.1, 3.0, (40, 1))
    q = rng.normal(size=(6, 7))
    scale = np.linalg.norm(rows, axis=1).max()
    r_t = np.asarray(lsh.mips_rows(jnp.asarray(rows, jnp.float32), jnp.float32(scale)))
    q_t = np.asarray(lsh.mips_queries(jnp.asarray(q, jnp.float32)))
    np.testing.assert_allclose(np.linalg.norm(r_t, axis=1), 1.0, rtol=1e-5)
    cos = (q_t @ r_t.T) / np.linalg.norm(q_t, axis=1, keepdims=True)
    np.testing.assert_allclose(cos, q @ rows.T / (np.linalg.norm(q, axis=1, keepdims=True) * scale), atol=1e-5)


@pytest.mark.parametrize("mips", [False, True])
def test_mips_simhash_prefers_the_longer_of_two_rows_in_one_direction(mips):
    """Two label rows point the same way, one 4x longer (a 4x larger logit for every query): plain
    simhash cannot tell them apart (same angle), simple-LSH puts the longer one in more of the
    query's buckets."""
    d, L, T = 16, 200, 32
    cfg = lsh.LSHConfig(HashSpec("simhash", d + mips, T, 4), 8, "fifo", 16, 32, 16, "candidates", 64, mips=mips)
    state = lsh.init_state(jax.random.PRNGKey(0), cfg, L, d, False, "adam")
    rng = np.random.default_rng(6)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    weights = np.asarray(state.weights).copy()  # rows of norm about 1
    weights[0], weights[1] = 0.75 * direction, 3.0 * direction  # row 1: the longest of all
    state = lsh.rehash(cfg, state.replace(weights=jnp.asarray(weights, jnp.float32)), jax.random.PRNGKey(1))
    side = rng.normal(size=(300, d))  # queries at cos 0.8 to the direction: logits 0.6 and 2.4
    side -= (side @ direction)[:, None] * direction
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    q = jnp.asarray(0.8 * direction + 0.6 * side, jnp.float32)
    keys = np.asarray(hash_keys(cfg.spec, state.hash, lsh.mips_queries(q) if mips else q))
    label_keys = np.asarray(state.label_keys)
    hits = [(keys == label_keys[i][None, :]).mean() for i in (0, 1)]
    if mips:
        assert hits[1] > hits[0] + 0.15, hits
    else:
        assert hits[0] == hits[1], hits
