"""Losses from label indices equal the same losses on a dense 0/1 target (built here, in the test)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xcs.losses import (
    FROM_LOG_PARTITION,
    LOSSES,
    choose_loss,
    one_vs_all,
    one_vs_all_from_parts,
    one_vs_all_sampled,
    softmax_cross_entropy,
    softmax_pal,
    top_label_share,
)


def dense_reference(name, logits, targets):
    if name == "softmax":
        logp = jax.nn.log_softmax(logits, axis=-1)
        n = targets.sum(-1)
        return jnp.where(n > 0, -(targets * logp).sum(-1) / jnp.maximum(n, 1), 0.0)
    if name == "softmax_pal":  # each positive its own softmax term, not divided by the point's label count
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -(targets * logp).sum(-1)
    if name == "bce":
        return (jax.nn.softplus(logits) - targets * logits).sum(-1)
    if name == "ova":  # BCE of sigmoid(z - log L) against the 0/1 target, written out per label
        p = jax.nn.sigmoid(logits - np.log(logits.shape[-1]))
        return -(targets * jnp.log(p) + (1 - targets) * jnp.log1p(-p)).sum(-1)
    if name == "squared_hinge":
        sign = 2.0 * targets - 1.0
        return jnp.square(jax.nn.relu(1.0 - sign * logits)).sum(-1)
    # The spherical family, from the dense output o and target y (not from q, s and the positives).
    n = targets.sum(-1)

    def mean_over_positives(values):
        return jnp.where(n > 0, (targets * values).sum(-1) / jnp.maximum(n, 1), 0.0)

    if name == "squared_error":
        return jnp.square(logits - targets).sum(-1)
    if name == "spherical_softmax":
        f = jnp.square(logits) + 0.01
        return -mean_over_positives(jnp.log(f / f.sum(-1, keepdims=True)))
    if name == "taylor_softmax":
        f = 1.0 + logits + 0.5 * jnp.square(logits)
        return -mean_over_positives(jnp.log(f / f.sum(-1, keepdims=True)))
    if name == "zloss":
        z = (logits - logits.mean(-1, keepdims=True)) / jnp.sqrt(logits.var(-1, keepdims=True) + 1e-12)
        return mean_over_positives(jax.nn.softplus(-z))
    raise AssertionError(name)


def random_problem(seed, batch=7, labels=31, width=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, labels)).astype(np.float32) * 2
    idx = np.zeros((batch, width), np.int32)
    mask = np.zeros((batch, width), bool)
    targets = np.zeros((batch, labels), np.float32)
    for b in range(batch):
        n = rng.integers(0, width + 1)  # includes points without labels
        ids = rng.choice(labels, n, replace=False)
        idx[b, :n], mask[b, :n], targets[b, ids] = ids, True, 1.0
        idx[b, n:] = rng.integers(0, labels, width - n)  # padding ids point anywhere
    return jnp.asarray(logits), jnp.asarray(idx), jnp.asarray(mask), jnp.asarray(targets)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_and_gradient_match_dense_target(name, seed):
    logits, idx, mask, targets = random_problem(seed)
    fast = LOSSES[name]
    np.testing.assert_allclose(fast(logits, idx, mask), dense_reference(name, logits, targets), rtol=1e-5, atol=1e-5)
    g_fast = jax.grad(lambda z: fast(z, idx, mask).sum())(logits)
    g_ref = jax.grad(lambda z: dense_reference(name, z, targets).sum())(logits)
    np.testing.assert_allclose(g_fast, g_ref, rtol=1e-5, atol=1e-5)


def numpy_pal_and_ova(logits, targets):
    """softmax_pal and ova in float64 numpy, straight from their definitions, one point and label at a time."""
    z, t = np.asarray(logits, np.float64), np.asarray(targets)
    batch, num_labels = z.shape
    pal, ova = np.zeros(batch), np.zeros(batch)
    for b in range(batch):
        log_z = np.log(np.exp(z[b]).sum())
        for j in range(num_labels):
            p = 1.0 / (1.0 + np.exp(-(z[b, j] - np.log(num_labels))))
            if t[b, j]:
                pal[b] += log_z - z[b, j]
                ova[b] -= np.log(p)
            else:
                ova[b] -= np.log(1.0 - p)
    return pal, ova


@pytest.mark.parametrize("seed", [3, 4])
def test_pal_and_ova_match_numpy_definition(seed):
    logits, idx, mask, targets = random_problem(seed, batch=5, labels=23)
    pal, ova = numpy_pal_and_ova(logits, targets)
    np.testing.assert_allclose(softmax_pal(logits, idx, mask), pal, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(one_vs_all(logits, idx, mask), ova, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("loss", sorted(FROM_LOG_PARTITION, key=lambda f: f.__name__), ids=lambda f: f.__name__)
def test_from_log_partition_forms(loss):
    """The `_from_parts` form on the log partition and positives' logits equals the loss, value and gradient."""
    logits, idx, mask, _ = random_problem(5)
    parts = FROM_LOG_PARTITION[loss]

    def from_parts(z):
        return parts(jax.nn.logsumexp(z, axis=-1), jnp.take_along_axis(z, idx, axis=-1), mask)

    np.testing.assert_allclose(from_parts(logits), loss(logits, idx, mask), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda z: from_parts(z).sum())(logits),
                               jax.grad(lambda z: loss(z, idx, mask).sum())(logits), rtol=1e-6, atol=1e-6)


def test_ova_from_parts():
    logits, idx, mask, _ = random_problem(6)
    softplus_sum = jax.nn.softplus(logits - np.log(logits.shape[-1])).sum(-1)
    picked = jnp.take_along_axis(logits, idx, axis=-1)
    np.testing.assert_allclose(one_vs_all_from_parts(softplus_sum, picked, mask, logits.shape[-1]),
                               one_vs_all(logits, idx, mask), rtol=1e-6, atol=1e-6)


def test_what_each_softmax_optimises():
    """Menon et al. 2019 on one input: label 0 is on 60 % of points, always with three others; label 4 on 40 %,
    alone; the rest on 30 % or never. Precision@1 wants label 0 first. The expected loss's stationary point (its
    gradient vanishes there) is softmax = E[y / |Y|] for `softmax`, which ranks label 4 first, and
    softmax = P(y = 1) / E|Y| for `softmax_pal`, sigmoid(z - log L) = P(y = 1) for `ova`: label 0 first."""
    num_labels = 9  # label 8 is never positive
    sets = [([0, 1, 2, 3], 0.3), ([0, 5, 6, 7], 0.3), ([4], 0.4)]
    idx = jnp.asarray([[0, 1, 2, 3], [0, 5, 6, 7], [4, 0, 0, 0]], jnp.int32)
    mask = jnp.asarray([[True] * 4, [True] * 4, [True, False, False, False]])
    prob = jnp.asarray([p for _, p in sets])
    marginal, normalised = np.zeros(num_labels), np.zeros(num_labels)
    for labels, p in sets:
        marginal[labels] += p
        normalised[labels] += p / len(labels)
    expected_len = sum(p * len(labels) for labels, p in sets)

    def expected(loss, z):
        return (prob * loss(jnp.broadcast_to(z, (len(sets), num_labels)), idx, mask)).sum()

    eps = 1e-12  # the never-positive label's optimum is at -inf: put it far down
    z_softmax = jnp.asarray(np.log(normalised + eps))
    z_pal = jnp.asarray(np.log(marginal / expected_len + eps))
    z_ova = jnp.asarray(np.log(num_labels) + np.log((marginal + eps) / (1 - marginal)))
    for loss, z in [(softmax_cross_entropy, z_softmax), (softmax_pal, z_pal), (one_vs_all, z_ova)]:
        np.testing.assert_allclose(jax.grad(lambda v, f=loss: expected(f, v))(z), 0.0, atol=1e-5)
    assert int(jnp.argmax(z_softmax)) == 4
    assert int(jnp.argmax(z_pal)) == 0 and int(jnp.argmax(z_ova)) == 0


def test_auto_chooses_ova_only_where_one_label_dominates():
    counts = np.array([3, 40, 7, 0])  # points per label, 100 points: the top label is on 40 %
    assert top_label_share(counts, 100) == pytest.approx(0.4)
    assert choose_loss(0.4, threshold=0.2) == "ova"
    assert choose_loss(0.4, threshold=0.5) == "softmax"
    assert choose_loss(0.2, threshold=0.2) == "ova"  # the threshold itself counts as dominant
    assert top_label_share(np.zeros(0, int), 0) == 0.0


def test_auto_loss_end_to_end_is_chosen_from_the_training_labels(tmp_path):
    """loss=auto trains (and records) ova, for auto_ova_epochs of the epochs, at auto_ova_width, on data with a
    dominant label; softmax at model.encoder.width without one; both with the kNN mix; xcs.predict resolves the run's
    config the same way (a model of the other width would not restore)."""
    from configs import xmc
    from configs.tables import panel
    from xcs.data.dataset import load_dataset
    from xcs.predict.predictor import load
    from xcs.train import loop

    for name, config in (("dominant", panel.get_config("smoke")), ("plain", xmc.get_config("smoke"))):
        config.loss.name = "auto"
        config.eval.knn.neighbors = 3
        config.model.encoder.width, config.loss.auto_ova_width = 32, 16
        config.data.synthetic.zipf_exponent = 1.0 if name == "dominant" else 0.0  # plain: a flat label prior
        config.train.progress = "none"
        config.train.steps = 0
        config.train.epochs = 2.0
        train = load_dataset(config.data, config.seed).train
        share = np.bincount(train.labels.indices).max() / train.num_points  # written here, not with the module's
        expected = "ova" if share >= config.loss.auto_share else "softmax"
        assert expected == {"dominant": "ova", "plain": "softmax"}[name]  # the two cases differ
        results = loop.train_and_evaluate(config, str(tmp_path / name))
        assert results["loss"] == expected
        assert results["epochs"] == pytest.approx(2.0 * (config.loss.auto_ova_epochs if expected == "ova" else 1.0))
        assert results["knn_neighbors"] == 3
        assert results["width"] == (16 if expected == "ova" else 32)
        predictor = load(str(tmp_path / name))
        assert predictor.config.loss.name == expected and predictor.knn


def test_auto_turns_the_knn_mix_off_for_ova_only_where_asked_or_the_config_predates_the_key():
    from configs import xmc
    from xcs.train.auto import resolve_auto

    config = xmc.get_config("data=some_set")
    assert config.loss.name == "auto" and config.eval.knn.neighbors == 10
    assert resolve_auto(config, 0.5).eval.knn.neighbors == 10  # ova keeps the mix
    config.loss.auto_ova_knn = False
    assert resolve_auto(config, 0.5).eval.knn.neighbors == 0
    assert resolve_auto(config, 0.05).eval.knn.neighbors == 10  # softmax: the key does not apply
    del config.loss["auto_ova_knn"]  # a run's config.json written before the key existed: resolved as it was then
    assert resolve_auto(config, 0.5).eval.knn.neighbors == 0


def _softplus(x):
    return np.logaddexp(x, 0.0)


def test_sampled_one_vs_all_over_a_block_scales_its_negatives_to_all_labels():
    rng = np.random.default_rng(3)
    L, C, B, Y = 40, 12, 5, 3
    c = np.log(L)
    logits = rng.normal(size=(B, C)).astype(np.float32)
    logits[:, -2:] = -np.inf  # two empty slots: 10 valid candidates
    label_idx = rng.integers(0, C - 2, (B, Y)).astype(np.int32)
    label_idx[:, 1] = (label_idx[:, 0] + 1) % (C - 2)  # distinct positives within a row
    label_idx[:, 2] = (label_idx[:, 0] + 2) % (C - 2)
    label_mask = rng.random((B, Y)) < 0.7
    label_mask[:, 0] = True
    got = np.asarray(one_vs_all_sampled(L)(jnp.asarray(logits), jnp.asarray(label_idx), jnp.asarray(label_mask)))
    for b in range(B):
        pos = set(label_idx[b][label_mask[b]])
        neg = [j for j in range(C - 2) if j not in pos]
        scale = (L - len(pos)) / len(neg)
        want = (scale * sum(_softplus(logits[b, j] - c) for j in neg)
                + sum(_softplus(logits[b, j] - c) - (logits[b, j] - c) for j in pos))
        np.testing.assert_allclose(got[b], want, rtol=1e-5)
    # Over a block of all labels it is one_vs_all.
    full = rng.normal(size=(B, L)).astype(np.float32)
    args = (jnp.asarray(full), jnp.asarray(label_idx), jnp.asarray(label_mask))
    np.testing.assert_allclose(np.asarray(one_vs_all_sampled(L)(*args)), np.asarray(one_vs_all(*args)), rtol=1e-5)
