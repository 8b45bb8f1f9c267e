"""The label-name mix (xcs.train.names): the name vectors against a hand computation, the mixed top-k against a
dense numpy computation, and a run end to end (the weight chosen on held-out training points, xcs.predict and
export giving the run's predictions, experiments.label_names re-scoring it)."""

import json
import math
import os
import re
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from tests.conftest import ROOT
from tests.test_knn import D_IN, L, dense_mix, small_model
from tests.test_predict import write_xc
from xcs.data import synthetic
from xcs.data.batching import Batcher
from xcs.data.sparse import CSR
from xcs.data.split import Split
from xcs.train import knn, names

F = 30  # features


def _dense_vectors(index: names.NameIndex, num_features: int) -> np.ndarray:
    out = np.zeros((index.tokens.shape[0], num_features))
    for label in range(index.tokens.shape[0]):
        for token, weight in zip(np.asarray(index.tokens[label]), np.asarray(index.weights[label])):
            out[label, token] += weight
    return out


def test_csr_to_scipy_is_the_same_matrix():
    rows = [[3, 0], [], [1, 2, 4]]
    values = [[0.5, 1.5], [], [2.0, -1.0, 3.0]]
    want = np.zeros((3, 5), np.float32)
    for i, (ids, vals) in enumerate(zip(rows, values)):
        want[i, ids] = vals
    np.testing.assert_array_equal(CSR.from_lists(rows, 5, values).to_scipy().toarray(), want)


def test_name_vectors_are_the_unit_idf_of_the_name_tokens_in_the_vocabulary():
    rng = np.random.default_rng(0)
    vocabulary = ["linux", "module", "slab", "of", "genus", "dicot"]
    dense = rng.random((7, 6)) < 0.5
    train = CSR.from_lists([np.flatnonzero(r).tolist() for r in dense], 6)
    label_names = ["linux/module.h", "dicot_genus.n.08108972", "x/unknown.h", "Slab-Module module"]
    got = _dense_vectors(names.build_index(label_names, vocabulary, train, 6), 6)
    n = len(dense)
    for label, tokens in enumerate([("linux", "module"), ("dicot", "genus"), (), ("slab", "module")]):
        want = np.zeros(len(vocabulary))
        for t in tokens:  # a repeated token counts once; 'h', 'n' and the digits are not features
            j = vocabulary.index(t)
            df = sum(1 for i in range(n) if dense[i, j])
            want[j] = math.log((1 + n) / (1 + df)) + 1
        norm = math.sqrt(sum(w * w for w in want))
        np.testing.assert_allclose(got[label], want / norm if norm else want, rtol=1e-6)


def _random_rows(rng, n, width, num_cols, labels=False):
    lengths = rng.integers(0 if labels else 1, width + 1, size=n)
    rows = [rng.choice(num_cols, size=m, replace=False).tolist() for m in lengths]
    values = None if labels else [rng.random(m).astype(np.float32).tolist() for m in lengths]
    return CSR.from_lists(rows, num_cols, values)


def _reference(model, variables, x, features: CSR, label_names, vocabulary, train: CSR, memory_x, memory_labels,
               k_nn, temperature, vote_weight, weight, k, ova):
    """Dense numpy: every label's probability, neighbour vote and name cosine, mixed, then the top k."""
    prediction = dense_mix(model, variables, x, memory_x, memory_labels, k_nn, temperature, vote_weight, ova)
    idf = {t: math.log((1 + train.num_rows) / (1 + (train.to_scipy()[:, j] != 0).sum())) + 1
           for j, t in enumerate(vocabulary)}
    name_matrix = np.zeros((L, F))
    for label, name in enumerate(label_names):
        for token in set(name.split()) & set(vocabulary):  # words that are not features add nothing
            name_matrix[label, vocabulary.index(token)] = idf[token]
    name_matrix /= np.maximum(np.linalg.norm(name_matrix, axis=1, keepdims=True), 1e-300)
    points = features.to_scipy().toarray()
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    score = (1 - weight) * prediction + weight * points @ name_matrix.T
    ids = np.argsort(-score, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(score, ids, 1), ids


@pytest.mark.parametrize("head,k_nn,ova,weight", [("dense", 5, False, 0.3), ("dense", 0, False, 0.5),
                                                  ("dense", 5, True, 0.2), ("sparse", 3, False, 0.6),
                                                  ("dense", 5, False, 0.0)])
def test_names_prediction_equals_the_dense_mix(head, k_nn, ova, weight):
    rng = np.random.default_rng(k_nn + int(10 * weight))
    model, variables = small_model(head)
    vocabulary = [f"w{j}" for j in range(F)]
    # Names of one to three vocabulary words; some labels share words, a few have no name word at all.
    label_names = [" ".join(f"w{j}" for j in rng.choice(F, size=rng.integers(1, 4), replace=False)) for _ in range(L)]
    label_names[3] = "nothing known"
    train = _random_rows(rng, 50, 6, F)
    memory_x = rng.normal(size=(30, D_IN)).astype(np.float32)
    memory_labels = _random_rows(rng, 30, 4, L, labels=True)
    memory = knn.build_memory(model, variables, Batcher(Split(labels=memory_labels, dense=memory_x), 0, 0), 8)
    x = rng.normal(size=(6, D_IN)).astype(np.float32)
    features = _random_rows(rng, 6, 5, F)
    idx = np.zeros((6, 5), np.int32)
    val = np.zeros((6, 5), np.float32)
    for i in range(6):
        ids, vals = features.row(i)
        idx[i, : len(ids)], val[i, : len(ids)] = ids, vals
    cfg = default.get_config().eval.knn
    cfg.neighbors, cfg.temperature, cfg.weight, cfg.memory_chunk = k_nn, 0.1, 0.4, 16
    k = 7
    index = names.build_index(label_names, vocabulary, train, F)
    predict = names.make_names_predict(model, k, F, 16, index, cfg if k_nn else None, memory if k_nn else None,
                                       L if ova else None)
    batch = {"x": jnp.asarray(x), "feat_idx": jnp.asarray(idx), "feat_val": jnp.asarray(val)}
    several = (0.0, weight, 0.9)  # scored in one pass: each as if alone
    for got, w in [(predict(variables, batch, weight), weight),
                   *zip(zip(*predict(variables, batch, several)), several)]:
        scores, ids = got
        ref_scores, ref_ids = _reference(model, variables, x, features, label_names, vocabulary, train, memory_x,
                                         memory_labels, k_nn, 0.1, 0.4, w, k, ova)
        np.testing.assert_allclose(np.asarray(scores), ref_scores, rtol=2e-5, atol=1e-6)
        gaps = np.abs(np.diff(ref_scores, axis=1)) > 1e-6  # ids agree wherever the scores are not tied
        distinct = np.ones_like(ref_ids, bool)
        distinct[:, 1:] &= gaps
        distinct[:, :-1] &= gaps
        np.testing.assert_array_equal(np.asarray(ids)[distinct], ref_ids[distinct])


def _named_data(tmp_path):
    """Smoke-sized XC files whose labels are named after the feature their training points carry most (as a
    header is after its contents), with the label id, since names must differ."""
    spec = synthetic.SyntheticSpec(num_train=1000, num_test=200, num_features=2000, num_labels=300, num_clusters=20)
    data = tmp_path / "data" / "named"
    data.mkdir(parents=True)
    train_x, train_y = synthetic.generate_split(spec, "train")
    for split, (x, y) in (("train", (train_x, train_y)), ("test", synthetic.generate_split(spec, "test"))):
        write_xc(data / f"{split}.txt", x, y)
    (data / "vocab.txt").write_text("".join(f"w{j}\n" for j in range(spec.num_features)))
    top = np.asarray((train_y.to_scipy().T @ train_x.to_scipy()).argmax(axis=1)).ravel()
    (data / "labels.txt").write_text("".join(f"w{f}.n.{label}\n" for label, f in enumerate(top)))
    return data


def _run(args, env, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_run_chooses_the_weight_and_prediction_keeps_it(tmp_path, monkeypatch):
    """configs/xmc.py on named XC data: the weight is chosen on held-out training points, xcs.predict and an
    export give predictions.txt, experiments.label_names at that weight gives the run's metrics."""
    import xcs

    data = _named_data(tmp_path)
    env = dict(os.environ, XCS_DATA_DIR=str(tmp_path / "data"))
    monkeypatch.setenv("XCS_DATA_DIR", env["XCS_DATA_DIR"])  # xcs.load builds the kNN memory from the data
    workdir = tmp_path / "run"
    trained = _run(["launch.py", "--config=configs/xmc.py:data=named,smoke", f"--workdir={workdir}"], env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    choice = results["label_names"]
    from configs.xmc import NAME_WEIGHTS

    assert sorted(float(w) for w in choice["p1_by_weight"]) == [float(w) for w in NAME_WEIGHTS.split(",")]
    best = max(choice["p1_by_weight"].values())
    assert choice["p1_by_weight"][f"{choice['weight']:g}"] == best and choice["tuned_on"] == 50  # 5 % of 1000
    assert results["data"]["train_points"] == 950
    predictor = xcs.load(str(workdir))
    assert predictor.name_match is not None and predictor.name_match[1] == choice["weight"]
    from xcs.data.xmc_repo import load_splits

    _, (test_x, _) = load_splits(str(data))
    lines = (workdir / "predictions.txt").read_text().splitlines()[1:]
    want = [[int(t.split(":")[0]) for t in line.split()] for line in lines]
    for model in (predictor, xcs.load(predictor.export(str(tmp_path / "export")))):
        ids, _ = model.predict(test_x, k=len(want[0]))
        assert [row[: len(w)].tolist() for row, w in zip(ids, want)] == want
    out = tmp_path / "names.json"
    run = _run(["-m", "experiments.label_names", f"--workdir={workdir}", f"--mix=0,{choice['weight']}",
                f"--out={out}"], env)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    for key in ("P@1", "P@5", "PSP@5"):
        assert rows[1][key] == pytest.approx(results["test"][key], abs=0.01), key
    # A vocab.txt with more tokens than the data has features is refused in one line, exit 2, before training.
    (data / "vocab.txt").write_text("".join(f"w{j}\n" for j in range(2001)))
    refused = _run(["launch.py", "--config=configs/xmc.py:data=named,smoke", f"--workdir={tmp_path / 'other'}"], env)
    lines = [line for line in refused.stderr.splitlines() if not re.match(r"[IWE]\d{4} ", line)]
    assert refused.returncode == 2 and len(lines) == 1 and "vocab.txt:2001" in lines[0], refused.stderr[-2000:]
    assert not (tmp_path / "other").exists()


def test_the_mix_is_off_where_no_name_has_a_feature_token():
    from xcs.data.split import Dataset

    config = default.get_config()
    config.eval.names.weights = "0,0.5"
    train = Split(labels=CSR.from_lists([[0], [1]], 2), features=CSR.from_lists([[0, 1], [1]], 2, [[1.0, 2.0], [3.0]]))

    def data(label_names, vocabulary=("apple", "pie")):
        return Dataset("d", train, train, 2, 2, "here", label_names=label_names, vocabulary=vocabulary)

    assert names.plan(config, data(("fruit", "dessert"))) is None  # no name token is a feature
    assert names.plan(config, data(("apple", "dessert"), vocabulary=None)) is None  # no vocab.txt
    index, weights = names.plan(config, data(("apple", "dessert")))
    assert weights == (0.0, 0.5) and np.asarray(index.weights)[:, 0].tolist() == [1.0, 0.0]
    config.eval.names.weights = "0"
    assert names.plan(config, data(("apple", "pie"))) is None  # off


def test_choose_weight_counts_top1_hits_per_weight():
    """A stand-in prediction with a known top-1 at each weight: P@1 per weight by hand, ties to the smaller."""
    truth = [[0], [1, 2], [], [3]]
    split = Split(labels=CSR.from_lists(truth, 5), features=CSR.from_lists([[0]] * 4, 1, [[1.0]] * 4))
    top1 = {0.0: [0, 0, 0, 0], 0.5: [0, 2, 1, 3], 0.2: [4, 1, 0, 3]}  # hits 1, 3 and 2 of 4 points

    def predict(variables, batch, weights):
        rows = np.asarray(batch["feat_idx"]).shape[0]
        ids = np.full((len(weights), rows, 1), -1)
        for i, w in enumerate(weights):
            ids[i, :4, 0] = top1[w]
        return np.zeros(ids.shape), ids

    best, scores = names.choose_weight(predict, None, Batcher(split, 1, 0), 8, [0.5, 0.0, 0.2], np.ones(5))
    assert scores == {"0": 25.0, "0.2": 50.0, "0.5": 75.0} and best == 0.5
    top1[0.2] = [0, 2, 1, 3]  # a tie with 0.5: the smaller weight
    assert names.choose_weight(predict, None, Batcher(split, 1, 0), 8, [0.5, 0.0, 0.2], np.ones(5))[0] == 0.2
