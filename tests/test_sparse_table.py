"""config.train.sparse_embedding: the bag encoder's table trained at the batch's rows only (xcs.train.sparse_table).

The reference is written here: the dense model's full gradient (jax.grad of the loss over all parameters) and a
numpy Adam that steps every parameter but the table densely and the table's rows only where the batch has a feature
id (lazy Adam), step after step.
"""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import xmc
from xcs.core.errors import ConfigError
from xcs.data.batching import Batcher, EpochIterator
from xcs.data.dataset import load_dataset
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.registry import build_model
from xcs.train import loop
from xcs.train.optim import make_optimizer
from xcs.train.sparse_table import SparseTable, max_batch_rows, optimizer_init
from xcs.train.state import create_state, make_train_step
from xcs.validate import validate

B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 3e-3


def smoke_config(**train):
    config = xmc.get_config("smoke")
    config.train.progress = "none"
    for key, value in train.items():
        config.train[key] = value
    return config


def test_batch_rows_are_the_distinct_ids_and_every_entry_finds_its_row():
    rng = np.random.default_rng(0)
    feat_idx = rng.integers(0, 50, (8, 6)).astype(np.int32)
    table = SparseTable(num_rows=50, max_rows=48, optimizer=None, learning_rate=None)
    rows, valid, pos = jax.jit(table.batch_rows)(jnp.asarray(feat_idx))
    distinct = np.unique(feat_idx)
    assert np.asarray(valid).sum() == len(distinct)
    np.testing.assert_array_equal(np.asarray(rows)[: len(distinct)], distinct)
    np.testing.assert_array_equal(np.asarray(rows)[np.asarray(pos)], feat_idx)


def test_the_bound_on_a_batch_s_rows_holds_for_every_batch():
    config = smoke_config()
    data = load_dataset(config.data, 0)
    batcher = Batcher(data.train, 0, 0)
    iterator = EpochIterator(batcher, 64, 0)
    lengths = np.minimum(batcher.features.row_lengths(), batcher.feature_width)
    bound = max_batch_rows(lengths, map(iterator.rows_for_step, range(50)), data.num_features)
    distinct = [len(np.unique(batcher(iterator.rows_for_step(s))["feat_idx"])) for s in range(50)]
    entries = [int(lengths[iterator.rows_for_step(s)].sum()) for s in range(50)]
    assert max(distinct) <= bound == min(max(entries) + 1, data.num_features)


def _adam(p, m, v, g, t):
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    return p - LR * (m / (1 - B1**t)) / (np.sqrt(v / (1 - B2**t)) + EPS), m, v


def test_steps_equal_full_gradient_adam_on_other_params_and_lazy_adam_on_the_table():
    config = smoke_config(sparse_embedding=True, warmup_steps=0, schedule="constant")
    for part in ("encoder", "head"):
        config.train.optimizer[part].learning_rate = LR
    data = load_dataset(config.data, 0)
    batcher = Batcher(data.train, 0, 0)
    iterator = EpochIterator(batcher, 16, 0)  # small batches: each touches few of the 2000 rows
    batches = [batcher(iterator.rows_for_step(s)) for s in range(4)]
    model = build_model(config, data.num_features, data.num_labels)
    loss_fn = get_loss(config.loss.name)
    tx, schedules = make_optimizer(config, 100)
    state = create_state(model, tx, batches[0], loss_fn, jax.random.PRNGKey(0), optimizer_init(config, tx))
    lengths = np.minimum(batcher.features.row_lengths(), batcher.feature_width)
    bound = max_batch_rows(lengths, map(iterator.rows_for_step, range(4)), data.num_features)
    table = SparseTable(data.num_features, bound, config.train.optimizer.encoder, schedules["encoder"])
    step = make_train_step(model, tx, loss_fn, schedules, sparse_table=table)

    def full_grad(params, batch):  # the dense model, every parameter differentiated (dropout is 0 in smoke)
        return jax.grad(lambda p: model.apply({"params": p}, batch, loss_fn, True, method=XMCModel.loss).mean())(params)

    leaves, treedef = jax.tree.flatten(jax.tree.map(np.asarray, state.params))
    table_at = [i for i, (path, _) in enumerate(jax.tree_util.tree_flatten_with_path(state.params)[0])
                if jax.tree_util.keystr(path) == "['encoder']['embedding']"]
    assert len(table_at) == 1
    ref = [x.copy() for x in leaves]
    m = [np.zeros_like(x) for x in leaves]
    v = [np.zeros_like(x) for x in leaves]
    touched_ever = np.zeros(data.num_features, bool)
    moved_by_dense_adam = False
    for t, batch in enumerate(batches, start=1):
        g = jax.tree.leaves(full_grad(jax.tree.unflatten(treedef, [jnp.asarray(x) for x in ref]), batch))
        g = [np.asarray(x) for x in g]
        untouched = np.setdiff1d(np.arange(data.num_features), np.unique(batch["feat_idx"]))
        for i in range(len(ref)):
            p_new, m_new, v_new = _adam(ref[i], m[i], v[i], g[i], t)
            if i == table_at[0]:  # lazy: rows without a feature id in the batch keep weights and moments
                moved_by_dense_adam |= not np.allclose(p_new[untouched], ref[i][untouched])
                p_new[untouched], m_new[untouched], v_new[untouched] = (
                    ref[i][untouched], m[i][untouched], v[i][untouched])
            ref[i], m[i], v[i] = p_new, m_new, v_new
        touched_ever[np.unique(batch["feat_idx"])] = True
        state, metrics = step(state, jax.tree.map(jnp.asarray, batch), jax.random.PRNGKey(1))
        for got, want in zip(jax.tree.leaves(state.params), ref):
            np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-6)
        full_norm = np.sqrt(sum(np.sum(x * x) for x in g))
        np.testing.assert_allclose(float(metrics["grad_norm"]), full_norm, rtol=1e-4)
    assert moved_by_dense_adam  # the steps did differ from dense Adam, so the test tells lazy from dense
    assert touched_ever.sum() < data.num_features / 2  # and most rows were never touched


def test_sparse_embedding_runs_end_to_end_and_resumes_to_the_same_result(tmp_path):
    config = smoke_config(sparse_embedding=True, checkpoint_every=20)
    reference = loop.train_and_evaluate(config, str(tmp_path / "ref"))
    assert reference["test"]["P@1"] > 40.0  # it learns (dense: ~70)
    wd = tmp_path / "resumed"
    shutil.copytree(tmp_path / "ref", wd)
    (wd / "results.json").unlink()  # as if stopped after the checkpoint of step 40, which was then lost
    shutil.rmtree(wd / "checkpoints" / "40")
    resumed = loop.train_and_evaluate(config, str(wd))
    assert resumed["resumed_from_step"] == 20
    assert resumed["test"] == reference["test"]


@pytest.mark.parametrize("override, key", [
    (dict(encoder="dense"), "train.sparse_embedding"),
    (dict(clip_grad_norm=1.0), "train.sparse_embedding"),
    (dict(mode="async"), "train.sparse_embedding"),
])
def test_sparse_embedding_is_refused_where_it_does_not_apply(override, key):
    config = smoke_config(sparse_embedding=True)
    for name, value in override.items():
        if name == "encoder":
            config.model.encoder.name = value
            config.data.text.inputs = "embedding"
        else:
            config.train[name] = value
    with pytest.raises(ConfigError, match=key):
        validate(config)
