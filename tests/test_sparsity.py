"""Dynamic sparse training: the fixed fan-in layer against a dense masked matmul, prune/regrow
invariants, a hand-worked RigL case, optimizer-moment reset, the schedules, label clusters, the
auxiliary objective, and smoke runs of every algorithm through launch.py."""

import itertools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dst
from tests.conftest import ROOT
from xcs.auxiliary import actions as aux_actions
from xcs.auxiliary import clusters
from xcs.auxiliary.objective import first_occurrences
from xcs.data.dataset import Split
from xcs.data.sparse import CSR
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.registry import build_model
from xcs.sparsity import actions as dst_actions
from xcs.sparsity import fanin, rewire
from xcs.validate import validate


def _dense(weight, indices, d):
    rows = np.arange(weight.shape[0])[:, None]
    return jnp.zeros((weight.shape[0], d), weight.dtype).at[rows, indices].add(weight)


@pytest.mark.parametrize("matmul", [fanin.fanin_matmul, fanin.fanin_matmul_gather])
@pytest.mark.parametrize("num_labels,chunk", [(37, 8), (5, 5)])
def test_fanin_forward_and_both_gradients_equal_dense_masked_matmul(matmul, num_labels, chunk):
    d, k, b = 12, 5, 6
    key = jax.random.PRNGKey(num_labels)
    kh, kw, kb, ki, kr = jax.random.split(key, 5)
    h = jax.random.normal(kh, (b, d))
    w = jax.random.normal(kw, (num_labels, k))
    bias = jax.random.normal(kb, (num_labels,))
    idx = fanin.sample_indices(ki, num_labels, d, k, chunk)
    probe = jax.random.normal(kr, (b, num_labels))  # a random linear functional of the logits

    def sparse(h, w, bias):
        return matmul(h, w, bias, idx, chunk)

    def reference(h, w, bias):
        return h @ _dense(w, idx, d).T + bias

    np.testing.assert_allclose(jax.jit(sparse)(h, w, bias), reference(h, w, bias), rtol=1e-5, atol=1e-5)
    got = jax.jit(jax.grad(lambda *a: (sparse(*a) * probe).sum(), (0, 1, 2)))(h, w, bias)
    want = jax.grad(lambda *a: (reference(*a) * probe).sum(), (0, 1, 2))(h, w, bias)
    assert len(got) == 3
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_sampled_indices_are_distinct_per_row_and_cover_inputs():
    idx = np.asarray(fanin.sample_indices(jax.random.PRNGKey(0), 500, 20, 6, 64))
    assert idx.shape == (500, 6) and idx.dtype == np.int32
    assert all(len(set(r)) == 6 for r in idx) and idx.min() >= 0 and idx.max() < 20
    counts = np.bincount(idx.ravel(), minlength=20)
    assert counts.min() > 0.6 * counts.mean()  # roughly uniform over the inputs


@pytest.mark.parametrize("save_logits", [False, True])
@pytest.mark.parametrize("num_labels,chunk", [(37, 8), (5, 5)])
def test_fanin_logsumexp_and_its_gradients_equal_dense_reference(num_labels, chunk, save_logits):
    d, k, b = 12, 5, 6
    kh, kw, kb, ki, kr = jax.random.split(jax.random.PRNGKey(7 + num_labels), 5)
    h, w = jax.random.normal(kh, (b, d)), jax.random.normal(kw, (num_labels, k))
    bias, probe = jax.random.normal(kb, (num_labels,)), jax.random.normal(kr, (b,))
    idx = fanin.sample_indices(ki, num_labels, d, k, chunk)

    def reference(h, w, bias):
        return jax.nn.logsumexp(h @ _dense(w, idx, d).T + bias, axis=1)

    got = jax.jit(lambda *a: fanin.fanin_logsumexp(*a, idx, chunk, save_logits))(h, w, bias)
    np.testing.assert_allclose(got, reference(h, w, bias), rtol=1e-5, atol=1e-5)
    def lse(*a):
        return fanin.fanin_logsumexp(*a, idx, chunk, save_logits)

    grads = jax.jit(jax.grad(lambda *a: lse(*a) @ probe, (0, 1, 2)))(h, w, bias)
    want = jax.grad(lambda *a: reference(*a) @ probe, (0, 1, 2))(h, w, bias)
    for a, e in zip(grads, want):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def _sparse_head_and_variables(num_labels=40, d=16, block_mb=0.0005, save_logits_mb=1024.0):
    config = dst.get_config("smoke,intermediate=0,aux=0")
    config.sparsity.kernel, config.sparsity.block_mb = "block", block_mb  # several chunks, the last shifted
    config.sparsity.save_logits_mb = save_logits_mb
    from xcs.sparsity.head import make_sparse_head

    head = make_sparse_head(config, d, num_labels)
    h = jax.random.normal(jax.random.PRNGKey(1), (7, d))
    label_idx, label_mask = jnp.zeros((7, 3), jnp.int32), jnp.ones((7, 3), bool)
    variables = jax.jit(lambda k: head.init(k, h, label_idx, label_mask, get_loss("softmax"), method="loss"))(
        jax.random.PRNGKey(2))
    variables["params"]["bias"] = jax.random.normal(jax.random.PRNGKey(3), (num_labels,))
    return head, variables, h


@pytest.mark.parametrize("loss_name", ["softmax", "softmax_pal"])
@pytest.mark.parametrize("save_logits_mb", [0.0, 1024.0])
def test_sparse_head_chunked_softmax_loss_equals_the_full_logits_loss(save_logits_mb, loss_name):
    """The softmax losses of the fan-in head (chunked: log partition + positives, logits recomputed or
    kept) and their gradients equal the same loss on the full logits, with padded positives and a point
    without any."""
    head, variables, h = _sparse_head_and_variables(save_logits_mb=save_logits_mb)
    rng = np.random.default_rng(0)
    label_idx = jnp.asarray(rng.integers(0, 40, (7, 3)), jnp.int32)
    label_mask = jnp.asarray(rng.random((7, 3)) < 0.7).at[0].set(False).at[1].set(True)
    softmax = get_loss(loss_name)

    def loss(params, h, loss_fn):
        return head.apply({**variables, "params": params}, h, label_idx, label_mask, loss_fn, method="loss")

    def full(logits, label_idx, label_mask):  # not `softmax` itself: takes the [B, L] path
        return softmax(logits, label_idx, label_mask)

    got = jax.jit(lambda p, h: loss(p, h, softmax))(variables["params"], h)
    want = jax.jit(lambda p, h: loss(p, h, full))(variables["params"], h)
    assert float(got[0]) == 0.0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    g_got = jax.jit(jax.grad(lambda p, h: loss(p, h, softmax).sum(), (0, 1)))(variables["params"], h)
    g_want = jax.jit(jax.grad(lambda p, h: loss(p, h, full).sum(), (0, 1)))(variables["params"], h)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5), g_got, g_want)


@pytest.mark.parametrize("save_logits_mb", [0.0, 0.002, 0.003])  # [7, 97] float32 logits: 0.0026 MiB
def test_sparse_head_chunked_softmax_loss_holds_batch_by_labels_only_when_allowed(save_logits_mb):
    head, variables, h = _sparse_head_and_variables(num_labels=97, save_logits_mb=save_logits_mb)
    label_idx, label_mask = jnp.zeros((7, 3), jnp.int32), jnp.ones((7, 3), bool)

    def shapes(loss_fn):
        fn = jax.grad(lambda p: head.apply({**variables, "params": p}, h, label_idx, label_mask, loss_fn,
                                           method="loss").sum())
        return {tuple(v.aval.shape) for v in _all_vars(jax.make_jaxpr(fn)(variables["params"]).jaxpr)}

    assert ((7, 97) in shapes(get_loss("softmax"))) == (save_logits_mb > 0.0026)
    assert (7, 97) in shapes(lambda *a: get_loss("softmax")(*a))  # the test can see a [B, L] array


def _all_vars(jaxpr):
    for eqn in jaxpr.eqns:
        yield from eqn.outvars
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _all_vars(getattr(inner, "jaxpr", inner))


@pytest.mark.parametrize("kernel", ["block", "gather"])
def test_sparse_head_topk_equals_dense_topk(kernel):
    config = dst.get_config("smoke,intermediate=0,aux=0")
    config.sparsity.kernel = kernel
    config.sparsity.block_mb = 0.0005  # several chunks
    from xcs.sparsity.head import make_sparse_head

    head = make_sparse_head(config, 16, 50)
    h = jax.random.normal(jax.random.PRNGKey(1), (7, 16))
    label_idx, label_mask = jnp.zeros((7, 2), jnp.int32), jnp.ones((7, 2), bool)
    variables = jax.jit(lambda k: head.init(k, h, label_idx, label_mask, get_loss("softmax"), method="loss"))(
        jax.random.PRNGKey(2))
    variables["params"]["bias"] = jax.random.normal(jax.random.PRNGKey(3), (50,))
    scores, ids = jax.jit(lambda v, h: head.apply(v, h, 5, method="topk"))(variables, h)
    dense = h @ _dense(variables["params"]["weight"], variables["sparsity"]["indices"], 16).T + variables["params"][
        "bias"]
    want_s, want_i = jax.lax.top_k(dense, 5)
    np.testing.assert_allclose(scores, want_s, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ids, want_i)


def _rewire(algorithm, weight, indices, d, n, bound, chunk, key, g=None, h=None):
    scores = rewire.set_scores(key, d) if algorithm == "set" else rewire.rigl_scores(g, h)
    return rewire.prune_regrow(weight, indices, scores, n, bound, chunk, lambda s, shape: jnp.zeros(shape))


@pytest.mark.parametrize("algorithm,fan_in,num_labels", list(itertools.product(["set", "rigl"], [1, 6], [1, 21])))
def test_prune_regrow_invariants(algorithm, fan_in, num_labels):
    d, b, chunk = 16, 5, 8
    key = jax.random.PRNGKey(fan_in * 100 + num_labels)
    weight = jax.random.normal(key, (num_labels, fan_in))
    indices = fanin.sample_indices(key, num_labels, d, fan_in, chunk)
    bound = rewire.max_drop(0.5, fan_in, d)
    run = jax.jit(lambda *a: _rewire(algorithm, *a[:2], d, a[2], bound, chunk, *a[3:]))
    for step in range(3):
        key, kg, kh = jax.random.split(key, 3)
        g, h = jax.random.normal(kg, (b, num_labels)), jax.random.normal(kh, (b, d))
        n = rewire.num_to_drop(step * 10, 0.5, 40, fan_in, d)
        new_w, new_idx, mask = run(weight, indices, n, key, g, h)
        new_w, new_idx, mask, old_w, old_idx = map(np.asarray, (new_w, new_idx, mask, weight, indices))
        assert new_idx.shape == (num_labels, fan_in) and new_w.shape == (num_labels, fan_in)
        for r in range(num_labels):
            assert len(set(new_idx[r])) == fan_in and new_idx[r].min() >= 0 and new_idx[r].max() < d
            assert mask[r].sum() == int(n)
            # regrown slots: new inputs (never one the row used before), weight 0
            assert not set(new_idx[r][mask[r]]) & set(old_idx[r])
            assert np.all(new_w[r][mask[r]] == 0)
            # kept slots unchanged, and every dropped weight was no larger than every kept one
            np.testing.assert_array_equal(new_idx[r][~mask[r]], old_idx[r][~mask[r]])
            np.testing.assert_array_equal(new_w[r][~mask[r]], old_w[r][~mask[r]])
            if mask[r].any() and (~mask[r]).any():
                assert np.abs(old_w[r][mask[r]]).max() <= np.abs(old_w[r][~mask[r]]).min()
        weight, indices = jnp.asarray(new_w) + 0.1, jnp.asarray(new_idx)


def test_rigl_hand_worked_case():
    # 2 labels, 6 inputs, fan-in 3, drop 1 slot per row (the smallest |w|).
    weight = jnp.array([[0.5, -0.1, 0.9], [0.3, 0.8, -0.05]])
    indices = jnp.array([[0, 2, 4], [1, 3, 5]], jnp.int32)
    # One point: the dense gradient is g[l] * h, so the grow scores of row l are |g[l]| |h|.
    h = jnp.array([[1.0, -4.0, 2.0, 0.5, -3.0, 6.0]])
    g = jnp.array([[1.0, -2.0]])
    new_w, new_idx, mask = _rewire("rigl", weight, indices, 6, jnp.int32(1), 1, 2, None, g, h)
    # row 0 drops slot 1 (input 2, |w| 0.1); unused inputs 1, 3, 5 score 4, 0.5, 6: input 5 grows.
    # row 1 drops slot 2 (input 5, |w| 0.05); unused inputs 0, 2, 4 score 2, 4, 6: input 4 grows.
    np.testing.assert_array_equal(new_idx, [[0, 5, 4], [1, 3, 4]])
    np.testing.assert_array_equal(mask, [[False, True, False], [False, False, True]])
    np.testing.assert_array_equal(new_w, np.float32([[0.5, 0.0, 0.9], [0.3, 0.8, 0.0]]))


def test_rigl_hand_worked_batch_two_drops_shifted_chunk():
    # 3 labels, 6 inputs, fan-in 3, up to 2 drops per row; chunk 2 (the last chunk is shifted to rows 1-2).
    h = jnp.array([[1.0, 2.0, 0.0, 3.0, -1.0, 1.0],
                   [1.0, -2.0, 1.0, 3.0, 3.0, 0.0]])
    g = jnp.array([[1.0, 1.0, 2.0],
                   [1.0, -0.5, 0.0]])
    # dense gradients g[:, l]^T h:  row 0: [2, 0, 1, 6, 2, 1]   (input 1 cancels: sum |g h| would pick it)
    #                               row 1: [.5, 3, -.5, 1.5, -2.5, 1]
    #                               row 2: [2, 4, 0, 6, -2, 2]
    weight = jnp.array([[0.2, -0.05, 0.7], [0.9, 0.01, -0.3], [-0.4, 0.5, 0.6]])
    indices = jnp.array([[0, 3, 5], [1, 2, 4], [0, 3, 4]], jnp.int32)
    run = jax.jit(lambda n: _rewire("rigl", weight, indices, 6, n, 2, 2, None, g, h))
    new_w, new_idx, mask = run(jnp.int32(2))
    # row 0 drops slots 1 (|w| .05), 0 (.2); unused 1, 2, 4 score 0, 1, 2: slot 1 <- 4, slot 0 <- 2.
    # row 1 drops slots 1 (.01), 2 (.3); unused 0, 3, 5 score .5, 1.5, 1: slot 1 <- 3, slot 2 <- 5
    #   (input 4, just dropped, scores 2.5 but may not come back at once; input 1, kept, scores 3).
    # row 2 drops slots 0 (.4), 1 (.5); unused 1, 2, 5 score 4, 0, 2: slot 0 <- 1, slot 1 <- 5.
    np.testing.assert_array_equal(new_idx, [[2, 4, 5], [1, 3, 5], [1, 5, 4]])
    np.testing.assert_array_equal(mask, [[True, True, False], [False, True, True], [True, True, False]])
    np.testing.assert_array_equal(new_w, np.float32([[0, 0, 0.7], [0.9, 0, 0], [0, 0, 0.6]]))
    # one drop (bound still 2): only each row's smallest slot gets the best input
    new_w, new_idx, mask = run(jnp.int32(1))
    np.testing.assert_array_equal(new_idx, [[0, 4, 5], [1, 3, 4], [1, 3, 4]])
    np.testing.assert_array_equal(new_w, np.float32([[0.2, 0, 0.7], [0.9, 0, -0.3], [0, 0.5, 0.6]]))


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_reset_slots_zeros_momentum_of_regrown_slots_only(optimizer):
    from xcs.train.optim import make_optimizer

    config = dst.get_config("smoke")
    for part in ("encoder", "head"):
        config.train.optimizer[part].name = optimizer
    tx, _ = make_optimizer(config, 10)
    rng = np.random.default_rng(0)
    params = {"encoder": {"weight": jnp.ones((4, 3))},  # same shape and name as the head's: must stay
              "head": {"inner": {"weight": jnp.ones((4, 3)), "bias": jnp.ones(4)}}}
    opt_state = tx.init(params)
    for _ in range(2):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        _, opt_state = tx.update(grads, opt_state, params)
    mask = jnp.array(rng.random((4, 3)) < 0.4)
    after = rewire.reset_slots(opt_state, ("head", "inner", "weight"), mask)
    reset = 0
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(opt_state), jax.tree.leaves(after), strict=True):
        keys = tuple(getattr(p, "key", None) for p in path)
        a, b = np.asarray(a), np.asarray(b)
        if keys[-3:] == ("head", "inner", "weight") and a.shape == (4, 3):
            reset += 1
            assert np.all(b[np.asarray(mask)] == 0) and np.any(a[np.asarray(mask)] != 0)
            np.testing.assert_array_equal(b[~np.asarray(mask)], a[~np.asarray(mask)])
        else:
            np.testing.assert_array_equal(a, b)
    assert reset == (1 if optimizer == "sgd" else 2)  # momentum trace; Adam's mu and nu


def test_cosine_drop_schedule():
    f = [float(rewire.drop_fraction_at(t, 0.4, 100)) for t in (0, 25, 50, 100, 150)]
    np.testing.assert_allclose(f, [0.4, 0.2 * (1 + np.cos(np.pi / 4)), 0.2, 0.0, 0.0], atol=1e-6)
    assert [int(rewire.num_to_drop(t, 0.4, 100, 10, 64)) for t in (0, 50, 99, 100)] == [4, 2, 0, 0]
    assert rewire.max_drop(0.5, 10, 12) == 2  # never more than the unused inputs
    np.testing.assert_allclose([float(aux_actions.alpha_at(t, 0.6, 10)) for t in (0, 5, 10, 20)],
                               [0.6, 0.3, 0.0, 0.0], atol=1e-6)


@pytest.fixture(scope="module")
def small_run():
    """RigL + intermediate layer + aux on the smoke data: config, model, state after 2 steps, a batch."""
    return _small_run("smoke,algorithm=rigl,intermediate=64,aux=4")


def _small_run(arg, steps=2):
    from xcs.data.batching import Batcher, EpochIterator
    from xcs.data.dataset import load_dataset
    from xcs.train.optim import make_optimizer
    from xcs.train.state import create_state, make_train_step

    config = dst.get_config(arg)
    data = load_dataset(config.data, 0)
    iterator = EpochIterator(Batcher(data.train, 0, 0), 32, 0)
    model = build_model(config, data.num_features, data.num_labels, data=data)
    loss_fn = get_loss("softmax")
    tx, schedules = make_optimizer(config, 40)
    state = create_state(model, tx, iterator.batcher(iterator.rows_for_step(0)), loss_fn, jax.random.PRNGKey(0))
    step = make_train_step(model, tx, loss_fn, schedules)
    for batch in iterator.iterate(0, steps):
        state, _ = step(state, batch, jax.random.PRNGKey(1))
    return config, model, state, batch


@pytest.mark.parametrize("algorithm", ["set", "rigl"])
def test_regrown_moments_are_zero_and_others_untouched(algorithm, small_run):
    config, model, state, batch = small_run
    config = config.copy_and_resolve_references()
    config.sparsity.algorithm = algorithm
    (action,) = dst_actions.rewire_actions(config, model, 40)
    path = ("head", "inner", "inner")  # aux objective > intermediate layer > fan-in head
    before = jax.tree.map(np.asarray, state)
    after = action.run(jax.tree.map(jnp.copy, state), batch, jax.random.PRNGKey(2))
    old_idx = before.model_state["sparsity"][path[0]][path[1]][path[2]]["indices"]
    new_idx = np.asarray(after.model_state["sparsity"][path[0]][path[1]][path[2]]["indices"])
    changed = old_idx != new_idx
    assert changed.sum(1).min() >= 1  # every row rewired (drop 0.3 of 8 at step 2: 2 slots)
    weight_path = path + ("weight",)

    def moments(tree):
        out = []
        for p, leaf in jax.tree_util.tree_leaves_with_path(tree.opt_state):
            keys = tuple(getattr(x, "key", None) for x in p[-4:])
            out.append((keys == weight_path and leaf.shape == changed.shape, p, np.asarray(leaf)))
        return out

    found = 0
    for (is_w, p, a), (_, _, b) in zip(moments(before), moments(after), strict=True):
        if is_w:
            found += 1
            assert np.all(b[changed] == 0), p
            np.testing.assert_array_equal(b[~changed], a[~changed])
            assert np.any(a[changed] != 0)  # the test can fail: these were not zero before
        else:
            np.testing.assert_array_equal(a, b)  # encoder / bias / intermediate moments, counts
    assert found == 2  # Adam's mu and nu
    np.testing.assert_array_equal(np.asarray(after.params["head"]["inner"]["inner"]["weight"])[changed], 0)


def test_label_clusters_are_balanced_and_follow_features():
    # 40 labels, 4 true groups: group g's points carry features 10g..10g+9 only.
    rng = np.random.default_rng(0)
    rows_f, rows_l = [], []
    for i in range(400):
        label = i % 40
        group = label % 4
        rows_f.append(sorted(rng.choice(10, 5, replace=False) + 10 * group))
        rows_l.append([label])
    split = Split(labels=CSR.from_lists(rows_l, 40), features=CSR.from_lists(rows_f, 40))
    assign = clusters.balanced_clusters(clusters.label_centroids(split, 40, 16, 0), 4, 8, 0)
    assert sorted(np.bincount(assign, minlength=4)) == [10, 10, 10, 10]
    for group in range(4):
        assert len(set(assign[np.arange(40) % 4 == group])) == 1
    uneven = clusters.balanced_clusters(rng.normal(size=(23, 5)).astype(np.float32), 5, 4, 0)
    assert sorted(np.bincount(uneven, minlength=5)) == [4, 4, 5, 5, 5]


def test_label_clusters_are_cached_in_the_workdir(tmp_path):
    split = Split(labels=CSR.from_lists([[0, 1], [2], [3, 4]], 6), features=CSR.from_lists([[0], [1], [2]], 3))
    first = clusters.cached_label_clusters(split, 6, 2, 4, 3, 0, str(tmp_path))
    files = list(tmp_path.glob("label_clusters_*.npy"))
    assert len(files) == 1
    np.save(files[0], np.zeros(6, np.int32))  # a cached file is read back, not recomputed
    np.testing.assert_array_equal(clusters.cached_label_clusters(split, 6, 2, 4, 3, 0, str(tmp_path)), 0)
    assert sorted(np.bincount(first)) == [3, 3]


def test_aux_objective_mixes_main_and_cluster_bce(small_run):
    _, model, state, batch = small_run
    variables = {"params": state.params, **state.model_state}
    loss_fn = get_loss("softmax")
    total = jax.jit(lambda v, b: model.apply(v, b, loss_fn, True, method=XMCModel.loss))(variables, batch)
    h = jax.jit(lambda v, b: model.apply(v, b, False))(variables, batch)
    main = jax.jit(lambda v, h, i, m: model.apply(v, h, i, m, loss_fn, method=lambda mod, *a: mod.head.inner.loss(*a)))(
        variables, h, batch["label_idx"], batch["label_mask"])
    cluster = np.asarray(state.model_state["aux"]["head"]["label_cluster"])
    aux_params = state.params["head"]["classifier"]
    logits = h @ aux_params["kernel"] + aux_params["bias"]
    # reference BCE: a dense [B, clusters] 0/1 target (fine at this size)
    target = np.zeros(logits.shape)
    for b, (ids, mask) in enumerate(zip(np.asarray(batch["label_idx"]), np.asarray(batch["label_mask"]))):
        target[b, cluster[ids[mask]]] = 1
    bce = (np.logaddexp(0, logits) - target * logits).sum(1) / 4
    alpha = float(state.model_state["aux"]["head"]["alpha"])
    assert alpha == pytest.approx(0.5)  # no aux action ran: alpha is its initial value
    np.testing.assert_allclose(total, (1 - alpha) * main + alpha * bce, rtol=1e-5, atol=1e-5)
    ids = jnp.array([[3, 3, 1, 3], [2, 0, 2, 2]])
    mask = jnp.array([[True, True, True, False], [False, True, True, True]])
    np.testing.assert_array_equal(first_occurrences(ids, mask), [[True, False, True, False],
                                                                 [False, True, True, False]])


def test_bad_sparsity_config_names_the_key():
    config = dst.get_config("smoke,intermediate=0,aux=0")
    config.sparsity.fan_in = 99
    with pytest.raises(ValueError, match="config.sparsity.fan_in=99"):
        build_model(config, 100, 10)
    config = dst.get_config("smoke,aux=0")
    config.sparsity.kernel = "fast"
    with pytest.raises(ValueError, match="config.sparsity.kernel"):
        build_model(config, 100, 10)
    with pytest.raises(ValueError, match="config.aux.clusters"):
        build_model(dst.get_config("smoke"), 100, 10)  # aux needs the data


def test_schedules_that_would_never_act_are_refused():
    config = dst.get_config("smoke,aux=0")
    model = build_model(config, 100, 10)
    config.sparsity.algorithm, config.sparsity.rewire_interval = "set", 50
    with pytest.raises(ValueError, match="config.sparsity.rewire_interval=50"):
        dst_actions.rewire_actions(config, model, 40)  # last rewiring at 0.75 * 40 = 30
    config = dst.get_config("smoke")
    config.aux.cutoff = 0.0
    with pytest.raises(ValueError, match="config.aux.cutoff=0.0"):
        validate(config)


def test_table_sweep_has_every_row_and_the_bar_pair(tmp_path):
    from configs.tables import dst as table
    from xcs import sweep

    labels, names = [], []
    for arg, expected in (("data=wordnet_hypernyms", 19), ("data=wordnet_hypernyms,rows=bar", 2),
                          ("data=wordnet_hypernyms,rows=k64", 7)):
        # plan builds every run's config with its overrides: a mistyped key fails here
        runs = sweep.plan(os.path.join(ROOT, f"configs/tables/dst.py:{arg}"), str(tmp_path / "runs"))
        assert len(runs) == expected
        labels.append([])
        names.append({run.name for run in runs})
        for run in runs:
            config = table.get_config(arg)
            sweep.apply_overrides(config, run.overrides, run.name)
            labels[-1].append(table._row(config.to_dict()))
    assert len(set(labels[0])) == 19 and labels[0][0] == "dense"
    assert labels[1] == ["dense", "k=64 (92 % sparse) RigL + intermediate 4096 + aux (1024 clusters)"]
    assert set(labels[1]) <= set(labels[0])
    # one fan-in's column: its 7 rows, and the bar pair's workdirs, so those two runs are reused
    assert set(labels[2]) <= set(labels[0]) and all("k=32" not in label for label in labels[2])
    assert names[1] <= names[2] <= names[0]
    with pytest.raises(ValueError, match="rows='k7'"):
        table.get_config("rows=k7")
    assert {"dense bottleneck r=32", "k=128 (83 % sparse) static fixed fan-in", "k=32 (96 % sparse) SET"} <= set(
        labels[0])


def test_every_algorithm_runs_through_launch(tmp_path):
    procs = {}
    for algorithm in ("static", "set", "rigl"):
        cmd = [sys.executable, os.path.join(ROOT, "launch.py"), f"--config=configs/dst.py:smoke,algorithm={algorithm}",
               f"--workdir={tmp_path / algorithm}", "--config.train.progress=none", "--config.train.steps=20",
               "--config.eval.write_predictions=False"]
        procs[algorithm] = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for algorithm, proc in procs.items():
        out, err = proc.communicate(timeout=900)  # a guard only: three runs share 2 busy cores
        assert proc.returncode == 0, err[-3000:]
        assert "P@1" in out
        assert (tmp_path / algorithm / "results.json").exists()
        assert list((tmp_path / algorithm).glob("label_clusters_*.npy"))
