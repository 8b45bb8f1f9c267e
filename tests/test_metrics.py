"""Metrics equal napkinXC's on the same predictions, and a few hand-worked values."""

import numpy as np
import pytest

from xcs.data.sparse import CSR
from xcs.metrics import RankingMetrics, evaluate_predictions, inverse_propensity

nm = pytest.importorskip("napkinxc.metrics")


def random_case(seed, n=400, num_labels=60):
    rng = np.random.default_rng(seed)
    train = CSR.from_lists([sorted(rng.choice(num_labels, rng.integers(1, 5), replace=False).tolist())
                            for _ in range(1500)], num_labels)
    test = CSR.from_lists([sorted(rng.choice(num_labels, rng.integers(0, 6), replace=False).tolist())
                           for _ in range(n)], num_labels)
    pred = []
    for i in range(n):  # a mix of hits and misses, ranked, without repeats
        true = test.row(i)[0].tolist()
        ranked = list(dict.fromkeys(rng.permutation(true).tolist()[: rng.integers(0, 3)]
                                    + rng.permutation(num_labels).tolist()))
        pred.append(ranked[:5])
    return train, test, np.array(pred)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_napkinxc(seed):
    train, test, pred = random_case(seed)
    inv_ps = inverse_propensity(train, 0.55, 1.5)
    np.testing.assert_allclose(inv_ps, nm.Jain_et_al_inverse_propensity(train.to_lists(), 0.55, 1.5), rtol=1e-12)
    ours = evaluate_predictions(pred, test, inv_ps, 5, chunk=97)  # chunks that do not divide N
    y, p = test.to_lists(), pred.tolist()
    ref = {"P": nm.precision_at_k(y, p, 5), "nDCG": nm.ndcg_at_k(y, p, 5),
           "PSP": nm.psprecision_at_k(y, p, inv_ps, 5), "R": nm.recall_at_k(y, p, 5)}
    for name, values in ref.items():
        for i in range(5):
            assert abs(ours[f"{name}@{i + 1}"] - 100 * values[i]) <= 1e-6, (name, i + 1)


def test_hand_worked_values():
    true = CSR.from_lists([[0, 2], [1], []], 4)
    pred = np.array([[2, 1, 0], [3, 1, -1], [0, 1, 2]])
    inv_ps = np.array([1.0, 2.0, 3.0, 4.0])
    m = RankingMetrics(3, inv_ps)
    m.update(pred, true)
    r = m.result()
    assert r["P@1"] == pytest.approx(100 * 1 / 3)
    assert r["P@3"] == pytest.approx(100 * (2 / 3 + 1 / 3) / 3)
    # PSP@1: hits weigh 3 (label 2) ; best: 3 (point 0) + 2 (point 1)
    assert r["PSP@1"] == pytest.approx(100 * 3 / 5)
    assert r["R@3"] == pytest.approx(100 * (1 + 1 + 0) / 3)
    dcg2 = 1 / np.log2(3)
    assert r["nDCG@2"] == pytest.approx(100 * (1 / (1 + dcg2) + dcg2 / 1) / 3)
