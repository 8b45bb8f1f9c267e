"""Tests of the synthetic XMC generator: determinism, invariants, power law, scale, learnability."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from xcs.data import synthetic
from xcs.data.sparse import CSR
from xcs.data.synthetic import PRESETS, SyntheticSpec, describe, generate_split, signature_features

SMALL = SyntheticSpec(num_train=3000, num_test=500, num_features=2048, num_labels=200, num_clusters=10,
                      difficulty=0.2, seed=3)


def _check_csr(m: CSR, num_rows: int, num_cols: int) -> None:
    assert m.indptr.dtype == np.int64 and m.indices.dtype == np.int32 and m.values.dtype == np.float32
    assert m.num_rows == num_rows and m.num_cols == num_cols
    assert m.indptr[0] == 0 and np.all(np.diff(m.indptr) >= 0) and m.indptr[-1] == len(m.indices)
    assert len(m.values) == len(m.indices)
    if m.nnz:
        assert m.indices.min() >= 0 and m.indices.max() < num_cols
    # Sorted and unique inside each row: consecutive ids strictly increase except at row starts.
    increasing = np.diff(m.indices.astype(np.int64)) > 0
    row_start = np.zeros(m.nnz, dtype=bool)
    row_start[m.indptr[1:-1][m.indptr[1:-1] < m.nnz]] = True
    assert np.all(increasing | row_start[1:])


def _row_ids(m: CSR) -> np.ndarray:
    return np.repeat(np.arange(m.num_rows), m.row_lengths())


def _assert_same(a: CSR, b: CSR) -> None:
    assert a.num_cols == b.num_cols
    for name in ("indptr", "indices", "values"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.fixture(scope="module")
def small_train() -> tuple[CSR, CSR]:
    return generate_split(SMALL, "train")


def test_deterministic_and_seeded(small_train):
    feats, labels = small_train
    feats2, labels2 = generate_split(SMALL, "train")
    _assert_same(feats, feats2)
    _assert_same(labels, labels2)
    other_f, other_l = generate_split(dataclasses.replace(SMALL, seed=4), "train")
    assert not np.array_equal(labels.indices, other_l.indices[: len(labels.indices)])
    assert not np.array_equal(feats.indices[:1000], other_f.indices[:1000])
    _, test_l = generate_split(SMALL, "test")
    assert test_l.num_rows == SMALL.num_test
    assert not np.array_equal(labels.indices[:500], test_l.indices[:500])


def test_invariants(small_train):
    feats, labels = small_train
    _check_csr(feats, SMALL.num_train, SMALL.num_features)
    _check_csr(labels, SMALL.num_train, SMALL.num_labels)
    assert np.all(labels.values == 1.0)
    assert np.all(labels.row_lengths() >= 1)
    assert labels.row_lengths().max() <= SMALL.max_labels_per_point
    assert np.all(feats.values > 0)
    assert feats.row_lengths().max() <= SMALL.features_per_point
    norms = np.sqrt(np.bincount(_row_ids(feats), weights=feats.values.astype(np.float64) ** 2,
                                minlength=feats.num_rows))
    nonempty = feats.row_lengths() > 0
    assert nonempty.mean() > 0.99
    np.testing.assert_allclose(norms[nonempty], 1.0, rtol=1e-5)


def test_many_chunks_and_cap(monkeypatch):
    monkeypatch.setattr(synthetic, "_CHUNK", 97)  # many chunks, ragged last one
    spec = dataclasses.replace(SMALL, num_train=1000, features_per_point=6, noise_features=20.0)
    feats, labels = generate_split(spec, "train")
    _check_csr(feats, 1000, spec.num_features)
    _check_csr(labels, 1000, spec.num_labels)
    assert feats.row_lengths().max() == 6
    assert np.all(labels.row_lengths() >= 1)


def test_signature_features_present_without_difficulty():
    spec = dataclasses.replace(SMALL, num_train=300, difficulty=0.0, features_per_point=1000)
    feats, labels = generate_split(spec, "train")
    for i in range(spec.num_train):
        sig = signature_features(spec, labels.row(i)[0])
        assert np.isin(sig.ravel(), feats.row(i)[0]).all()


def test_power_law_and_coverage(small_train):
    _, labels = small_train
    counts = labels.column_counts()
    present = counts[counts > 0]
    assert counts.max() > 20 * np.median(present)
    assert 2.0 < labels.row_lengths().mean() < 3.5  # mean 3 less collapsed repeats
    _, test_labels = generate_split(SMALL, "test")
    # Test label occurrences mostly use labels seen in training (only the far tail is missing).
    assert (counts[test_labels.indices] > 0).mean() > 0.95


def test_describe(small_train):
    d = describe(*small_train)
    assert d["num_points"] == SMALL.num_train and d["num_labels"] == SMALL.num_labels
    assert d["num_features"] == SMALL.num_features
    assert d["points_without_labels"] == 0
    assert 0.0 <= d["share_labels_le5_points"] <= 1.0
    assert d["avg_labels_per_point"] == pytest.approx(small_train[1].nnz / SMALL.num_train)
    assert d["avg_features_per_point"] == pytest.approx(small_train[0].nnz / SMALL.num_train)


def test_large_label_space_stays_small():
    spec = SyntheticSpec(num_train=2000, num_test=10, num_features=2_000_000, num_labels=3_000_000,
                         num_clusters=3000, seed=1)
    tracemalloc.start()
    try:
        feats, labels = generate_split(spec, "train")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # O(L + F) float64 prior tables (~40 MB) and a chunk of points; nothing like [L, F] or [N, L].
    assert peak < 150 * 2**20
    _check_csr(feats, 2000, spec.num_features)
    _check_csr(labels, 2000, spec.num_labels)
    assert labels.indices.max() > 1_000_000  # frequent labels are spread over the id space


def _dense(m: CSR) -> np.ndarray:
    x = np.zeros((m.num_rows, m.num_cols), dtype=np.float32)
    x[_row_ids(m), m.indices] = m.values
    return x


def _knn_p1(spec: SyntheticSpec, k: int = 10) -> tuple[float, float]:
    """(P@1 of a cosine kNN classifier, P@1 of always predicting the most frequent train label)."""
    train_x, train_y = generate_split(spec, "train")
    test_x, test_y = generate_split(spec, "test")
    sim = _dense(test_x) @ _dense(train_x).T
    nn = np.argpartition(-sim, k, axis=1)[:, :k]
    weights = np.take_along_axis(sim, nn, axis=1)
    scores = np.einsum("tk,tkl->tl", weights, _dense(train_y)[nn])
    truth = _dense(test_y)
    p1 = truth[np.arange(truth.shape[0]), scores.argmax(1)].mean()
    baseline = truth[:, train_y.column_counts().argmax()].mean()
    return float(p1), float(baseline)


def test_learnable_and_difficulty_lowers_accuracy():
    easy, baseline = _knn_p1(SMALL)
    hard, _ = _knn_p1(dataclasses.replace(SMALL, difficulty=0.9))
    assert easy > 0.8 and easy > baseline + 0.4
    assert hard < easy - 0.1
    assert hard > baseline  # topic features alone still carry some signal


def test_presets_and_validation():
    assert PRESETS["quickstart"] == SyntheticSpec()
    _, labels = generate_split(PRESETS["smoke"], "test")
    assert labels.num_rows == PRESETS["smoke"].num_test
    empty_f, empty_l = generate_split(dataclasses.replace(SMALL, num_test=0), "test")
    assert empty_f.num_rows == 0 and empty_l.nnz == 0 and len(empty_l.indptr) == 1
    with pytest.raises(ValueError, match="split"):
        generate_split(SMALL, "valid")
    with pytest.raises(ValueError, match="difficulty"):
        SyntheticSpec(difficulty=1.5)
    with pytest.raises(ValueError, match="num_clusters"):
        SyntheticSpec(num_labels=5, num_clusters=10)
    with pytest.raises(ValueError, match="num_labels"):
        SyntheticSpec(num_labels=0)


def test_dominant_label_follows_the_label_count():
    """dominant_share adds the rank-0 label, more often to points with more labels, and no features; other
    labels and all features are those of the same spec without it."""
    spec = dataclasses.replace(SMALL, labels_per_point=5.0, dominant_share=0.3)
    feats, labels = generate_split(spec, "train")
    base_f, base_l = generate_split(dataclasses.replace(spec, dominant_share=0.0), "train")
    _assert_same(feats, base_f)
    _check_csr(labels, spec.num_train, spec.num_labels)
    dominant = synthetic._permute(np.zeros(1, np.int64), synthetic._Priors(spec).label_perm, spec.num_labels)[0]
    rows, base_rows = _row_ids(labels), _row_ids(base_l)
    others = labels.indices != dominant
    assert np.array_equal(rows[others], base_rows[base_l.indices != dominant])
    assert np.array_equal(labels.indices[others], base_l.indices[base_l.indices != dominant])
    has = np.zeros(spec.num_train, bool)
    has[rows[~others]] = True
    base_has = np.zeros(spec.num_train, bool)
    base_has[base_rows[base_l.indices == dominant]] = True
    assert np.all(has[base_has])  # drawn naturally: kept
    n = base_l.row_lengths()
    added = has & ~base_has
    few, many = n <= 2, n >= 6
    assert added[many].mean() > 2 * added[few].mean() > 0
    assert 0.1 < added.mean() < 0.4
    with pytest.raises(ValueError):
        SyntheticSpec(dominant_share=1.5)
