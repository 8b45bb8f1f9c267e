"""kNN-mixed prediction (xcs.train.knn) equals the dense computation: full softmax (or every label's sigmoid, for
one-versus-all) plus a [B, L] vote matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from xcs.data.batching import Batcher
from xcs.data.dataset import Split
from xcs.data.sparse import CSR
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.registry import build_model
from xcs.train import knn
from xcs.train.loop import train_and_evaluate
from xcs.validate import validate

D_IN, L = 12, 40


def _labels(rng, n, max_per_row, num_labels):
    lengths = rng.integers(0, max_per_row + 1, size=n)  # some points without labels
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([rng.choice(num_labels, size=m, replace=False) for m in lengths]).astype(np.int32)
    return CSR(indptr, indices, np.ones(len(indices), np.float32), num_labels)


def small_model(head: str, intermediate: int = 0):
    config = default.get_config()
    config.model.encoder.name = "dense"
    config.model.encoder.width = 16
    config.model.head.name = head
    config.model.head.intermediate = intermediate
    config.model.head.label_chunk = 16
    config.sparsity.fan_in = 4
    model = build_model(config, D_IN, L)
    example = {"x": jnp.zeros((2, D_IN)), "label_idx": jnp.zeros((2, 3), jnp.int32),
               "label_mask": jnp.ones((2, 3), bool)}
    variables = model.init({"params": jax.random.PRNGKey(1), "dropout": jax.random.PRNGKey(2)}, example,
                           get_loss("softmax"), False, method=XMCModel.loss)
    return model, variables


def _all_logits(module, h):
    head = module.head
    if hasattr(head, "inner"):  # the intermediate layer
        return head.inner.logits(head._hidden(h))
    return head.logits(h)


def dense_mix(model, variables, x, memory_x, memory_labels: CSR, k_nn, temperature, weight, ova=False, split=True):
    """Dense reference [B, L]: softmax over all L logits (with `ova` each label's sigmoid at offset log L) mixed with
    every label's summed neighbour vote (a neighbour's weight split over its labels, or whole if not `split`);
    K = 0 or weight 0: the probabilities alone."""
    h = np.asarray(model.apply(variables, {"x": x}, False), np.float64)
    logits = np.asarray(model.apply(variables, jnp.asarray(h, jnp.float32), method=_all_logits), np.float64)
    if ova:
        p = 1.0 / (1.0 + np.exp(-(logits - np.log(L))))
    else:
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
    if not k_nn or not weight:
        return p
    mem = np.asarray(model.apply(variables, {"x": memory_x}, False), np.float64)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    sims = unit(h) @ unit(mem).T
    votes = np.zeros_like(p)
    for b in range(len(x)):
        nearest = np.argsort(-sims[b], kind="stable")[:k_nn]
        w = np.exp((sims[b, nearest] - sims[b, nearest].max()) / temperature)
        w /= w.sum()
        for j, row in zip(w, nearest):
            labels, _ = memory_labels.row(row)
            for label in labels:
                votes[b, label] += j / len(labels) if split else j
    return (1 - weight) * p + weight * votes


def _naive(model, variables, x, memory_x, memory_labels: CSR, k_nn, temperature, weight, k, ova=False, split=True):
    """The top-k of dense_mix."""
    fused = dense_mix(model, variables, x, memory_x, memory_labels, k_nn, temperature, weight, ova, split)
    ids = np.argsort(-fused, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(fused, ids, 1), ids


@pytest.mark.parametrize("head,intermediate,k_nn,n_memory,chunk,ova,split", [
    ("dense", 0, 5, 57, 16, False, True), ("dense", 0, 8, 5, 4, False, True), ("sparse", 0, 5, 40, 64, False, True),
    ("dense", 24, 3, 30, 7, False, True), ("dense", 0, 5, 57, 16, True, True), ("sparse", 0, 8, 40, 64, True, True),
    ("dense", 0, 5, 57, 16, True, False), ("dense", 0, 5, 57, 16, False, False)])  # whole votes (the comparison's)
def test_knn_prediction_equals_the_dense_mix(head, intermediate, k_nn, n_memory, chunk, ova, split):
    rng = np.random.default_rng(k_nn + n_memory)
    model, variables = small_model(head, intermediate)
    memory_x = rng.normal(size=(n_memory, D_IN)).astype(np.float32)
    memory_labels = _labels(rng, n_memory, 4, L)
    batcher = Batcher(Split(labels=memory_labels, dense=memory_x), 0, 0)
    memory = knn.build_memory(model, variables, batcher, batch_size=8)
    x = rng.normal(size=(6, D_IN)).astype(np.float32)
    cfg = default.get_config().eval.knn
    cfg.neighbors, cfg.temperature, cfg.weight, cfg.memory_chunk = k_nn, 0.1, 0.4, chunk
    k = 7
    predict = knn.make_knn_predict(model, k, cfg, memory, L if ova else None, split)
    scores, ids = predict(variables, {"x": jnp.asarray(x)})
    ref_scores, ref_ids = _naive(model, variables, x, memory_x, memory_labels, min(k_nn, n_memory), 0.1, 0.4, k, ova,
                                 split)
    np.testing.assert_allclose(np.asarray(scores), ref_scores, rtol=2e-5, atol=1e-7)
    # Ids agree wherever the reference's scores are not tied with a neighbour's.
    gaps = np.diff(ref_scores, axis=1)
    distinct = np.ones_like(ref_ids, bool)
    distinct[:, 1:] &= np.abs(gaps) > 1e-6
    distinct[:, :-1] &= np.abs(gaps) > 1e-6
    np.testing.assert_array_equal(np.asarray(ids)[distinct], ref_ids[distinct])


def test_weight_zero_is_the_head_alone():
    rng = np.random.default_rng(0)
    model, variables = small_model("dense")
    memory_x = rng.normal(size=(20, D_IN)).astype(np.float32)
    memory = knn.build_memory(model, variables, Batcher(Split(labels=_labels(rng, 20, 3, L), dense=memory_x), 0, 0), 8)
    cfg = default.get_config().eval.knn
    cfg.neighbors, cfg.weight = 4, 0.0
    batch = {"x": jnp.asarray(rng.normal(size=(5, D_IN)), jnp.float32)}
    _, ids = knn.make_knn_predict(model, 5, cfg, memory)(variables, batch)
    _, head_ids = model.apply(variables, batch, 5, method=XMCModel.topk)
    np.testing.assert_array_equal(np.asarray(ids), np.asarray(head_ids))


def test_votes_of_a_shared_label_add_up():
    # Two neighbours, similarities equal: weights 1/2 each; label 3 is in both rows (alone in row 0).
    memory = knn.Memory(jnp.eye(2), jnp.asarray([[3, 0], [3, 5]], jnp.int32), jnp.asarray([[True, False],
                                                                                          [True, True]]))
    ids, votes = knn.neighbour_votes(jnp.asarray([[0.5, 0.5]]), jnp.asarray([[0, 1]]), memory, temperature=0.1)
    total = {}
    for i, v in zip(np.asarray(ids)[0], np.asarray(votes)[0]):
        if i >= 0:
            total[int(i)] = total.get(int(i), 0.0) + float(v)
    assert total == pytest.approx({3: 0.75, 5: 0.25})
    ids, votes = knn.neighbour_votes(jnp.asarray([[0.5, 0.5]]), jnp.asarray([[0, 1]]), memory, temperature=0.1,
                                     split=False)  # whole: each label of a neighbour gets its whole weight
    total = {}
    for i, v in zip(np.asarray(ids)[0], np.asarray(votes)[0]):
        if i >= 0:
            total[int(i)] = total.get(int(i), 0.0) + float(v)
    assert total == pytest.approx({3: 1.0, 5: 0.5})


@pytest.mark.parametrize("key,value,message", [
    ("eval.knn.neighbors", -1, "config.eval.knn.neighbors=-1"),
    ("eval.knn.weight", 1.5, "config.eval.knn.weight=1.5"),
    ("eval.knn.temperature", 0.0, "config.eval.knn.temperature=0.0"),
    ("loss.name", "bce", "config.loss.name='bce'"),
    ("model.head.name", "lsh", "with the lsh head it needs lsh.predict='exact'"),  # its default predict=candidates
    ("mesh.shape", (1, 2), "config.mesh.shape=(1, 2)")])
def test_unusable_knn_settings_are_refused_with_the_key(key, value, message, tmp_path):
    config = default.get_config()
    config.eval.knn.neighbors = 4
    section, name = key.rsplit(".", 1)
    parent = config
    for part in section.split("."):
        parent = parent[part]
    parent[name] = value
    pattern = message.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        validate(config)
    with pytest.raises(ValueError, match=pattern):  # before any data is read
        train_and_evaluate(config, str(tmp_path))


def test_knn_weights_script_weight_zero_reproduces_the_run(tmp_path):
    """experiments.knn_weights on a finished smoke run: its weight-0 row is the run's own test metrics."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    workdir = tmp_path / "run"
    train = subprocess.run([sys.executable, "launch.py", "--config=configs/xmc.py:smoke", f"--workdir={workdir}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    out = tmp_path / "knn.json"
    run = subprocess.run([sys.executable, "-m", "experiments.knn_weights", f"--workdir={workdir}", "--weights=0,0.5",
                          "--neighbors=3", f"--out={out}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    results = json.loads((workdir / "results.json").read_text())["test"]
    assert [r["weight"] for r in rows] == [0.0, 0.5]
    for key in ("P@1", "P@5", "PSP@5"):
        assert rows[0][key] == round(results[key], 2)
    assert rows[1]["P@1"] != rows[0]["P@1"] or rows[1]["PSP@5"] != rows[0]["PSP@5"]  # the mix changes something
