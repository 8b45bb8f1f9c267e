"""The mesh checks of tests/test_parallel.py, run in a process that sees 8 simulated CPU devices.

XLA_FLAGS=--xla_force_host_platform_device_count=8 must be set before jax is imported, so these
checks cannot run inside the main pytest process (which has imported jax with one device). Run as
`python -m tests.parallel_worker OUT.json WORKDIR`; writes {check name: value} for the tests to assert on.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import json  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from configs.default import get_config  # noqa: E402
from xcs.data.batching import Batcher, EpochIterator  # noqa: E402
from xcs.data.dataset import load_dataset  # noqa: E402
from xcs.dense import sharded as sharded_head  # noqa: E402
from xcs.losses import LOSSES  # noqa: E402
from xcs.parallel import mesh as mesh_lib  # noqa: E402
from xcs.registry import build_model  # noqa: E402
from xcs.train import loop  # noqa: E402
from xcs.train.checkpoint import Checkpointer  # noqa: E402
from xcs.train.optim import make_optimizer  # noqa: E402
from xcs.train.sharded import create_sharded_state, shard_predict, shard_train_step  # noqa: E402
from xcs.train.state import create_state, make_predict, make_train_step, variables  # noqa: E402

MESHES = ((1, 8), (2, 4), (8, 1))


def small_config(shape=(1, 1), loss="softmax"):
    config = get_config()
    s = config.data.synthetic
    s.num_train, s.num_test, s.num_features, s.num_labels, s.num_clusters = 256, 64, 512, 64, 8
    config.model.encoder.width = 16
    config.train.steps, config.train.batch_size, config.train.warmup_steps = 3, 32, 0
    config.train.progress, config.train.log_every, config.train.checkpoint_every = "none", 3, 3
    config.eval.batch_size = 32
    config.loss.name = loss
    config.mesh.shape = shape
    return config


def max_diff(a, b) -> float:
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y)))),
                                          jax.device_get(a), jax.device_get(b)))
    return max(leaves)


def leaf_at(tree, suffix: str):
    """The one leaf of `tree` whose path ends with `suffix` (e.g. Adam's 'mu/head/kernel')."""
    found = [x for path, x in jax.tree_util.tree_leaves_with_path(tree)
             if mesh_lib.path_string(path).endswith(suffix)]
    assert len(found) == 1, (suffix, len(found))
    return found[0]


def one_step(config, data):
    """(state after one step, loss, top-k of a test batch) for config.mesh."""
    mesh = mesh_lib.make_mesh(config.mesh)
    model = build_model(config, data.num_features, data.num_labels)
    loss_fn = LOSSES[config.loss.name]
    tx, schedules = make_optimizer(config, 10)
    iterator = EpochIterator(Batcher(data.train, 0, 0), config.train.batch_size, config.seed)
    batch = iterator.batcher(iterator.rows_for_step(0))
    test = Batcher(data.test, 0, 0)(np.arange(config.eval.batch_size))
    key = jax.random.PRNGKey(0)
    step, predict = make_train_step(model, tx, loss_fn, schedules), make_predict(model, 5)
    if mesh is None:
        state = create_state(model, tx, batch, loss_fn, key)
    else:
        state, shardings = create_sharded_state(model, tx, batch, loss_fn, key, mesh, config.mesh)
        step, predict = shard_train_step(step, mesh, shardings), shard_predict(predict, mesh, shardings)
    state, metrics = step(state, batch, key)
    return state, float(metrics["loss"]), predict(variables(state), test)


def main(out_path: str, workdir: str) -> None:
    assert jax.device_count() == 8, jax.devices()
    out: dict[str, object] = {}
    data = load_dataset(small_config().data, 0)

    # One train step and a top-k, every mesh against one device.
    ref_state, ref_loss, (ref_s, ref_i) = one_step(small_config(), data)
    for shape in MESHES:
        name = "x".join(map(str, shape))
        state, loss, (s, i) = one_step(small_config(shape), data)
        out[f"step_{name}"] = {"params": max_diff(state.params, ref_state.params),
                               "opt_state": max_diff(state.opt_state, ref_state.opt_state),
                               "loss": abs(loss - ref_loss), "topk_scores": max_diff(s, ref_s),
                               "topk_ids_equal": bool(np.array_equal(np.asarray(i), np.asarray(ref_i)))}
        if shape == (1, 8):
            kernel = state.params["head"]["kernel"]
            mu = leaf_at(state.opt_state, "mu/head/kernel")
            out["shards_1x8"] = {"kernel": [list(x.data.shape) for x in kernel.addressable_shards],
                                 "mu": [list(x.data.shape) for x in mu.addressable_shards],
                                 "encoder_embedding": list(
                                     state.params["encoder"]["embedding"].addressable_shards[0].data.shape),
                                 "head_bytes": mesh_lib.shard_bytes(state.params["head"])}

    # Every loss's sharded form against the dense loss: value and gradient wrt h and the kernel.
    mesh = mesh_lib.make_mesh(small_config((2, 4)).mesh)
    rng = np.random.default_rng(1)
    h = jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(6, 40)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(40,)), jnp.float32)
    idx = jnp.asarray(rng.integers(0, 40, size=(8, 5)), jnp.int32)
    mask = jnp.asarray(rng.random((8, 5)) < 0.6).at[0].set(False)
    def all_losses(loss_of):  # one jitted function for all losses: one compilation, not one per loss
        return jax.jit(lambda h, w: {name: jax.value_and_grad(lambda h, w, fn=fn: loss_of(h, w, fn).sum(),
                                                              argnums=(0, 1))(h, w) for name, fn in LOSSES.items()})

    dense = all_losses(lambda h, w, fn: fn(h @ w + bias, idx, mask))(h, kernel)
    sharded = all_losses(lambda h, w, fn: sharded_head.dense_loss(mesh, h, w, bias, idx, mask, fn))(h, kernel)
    for name in LOSSES:
        (v0, g0), (v1, g1) = dense[name], sharded[name]
        out[f"loss_{name}"] = {"value": abs(float(v1 - v0)) / max(1.0, abs(float(v0))),
                               "grad": max_diff(g1, g0) / max(1.0, max(float(jnp.abs(g).max()) for g in g0))}

    # End to end through the loop: eval metrics of a 3-step run on every mesh against one device.
    ref = loop.train_and_evaluate(small_config(), os.path.join(workdir, "single"))["test"]
    for shape in MESHES:
        name = "x".join(map(str, shape))
        got = loop.train_and_evaluate(small_config(shape), os.path.join(workdir, name))["test"]
        out[f"eval_{name}"] = max(abs(got[k] - ref[k]) for k in ref)

    # A checkpoint written on 1x8 restored onto 2x4 (orbax reshards on restore).
    saved = Checkpointer(os.path.join(workdir, "1x8", "checkpoints"), 2)
    step = saved.latest_step()
    config = small_config((2, 4))
    model = build_model(config, data.num_features, data.num_labels)
    tx, _ = make_optimizer(config, config.train.steps)
    batch = Batcher(data.train, 0, 0)(np.arange(config.train.batch_size))
    mesh = mesh_lib.make_mesh(config.mesh)
    like, _ = create_sharded_state(model, tx, batch, LOSSES["softmax"], jax.random.PRNGKey(5), mesh, config.mesh)
    restored = saved.restore(step, like)
    raw = Checkpointer(os.path.join(workdir, "single", "checkpoints"), 2)
    single_model = build_model(small_config(), data.num_features, data.num_labels)
    single_like = create_state(single_model, tx, batch, LOSSES["softmax"], jax.random.PRNGKey(5))
    reference = raw.restore(step, single_like)
    kernel = restored.params["head"]["kernel"]
    out["restore_1x8_on_2x4"] = {"step": int(restored.step), "params": max_diff(restored.params, reference.params),
                                 "spec": str(kernel.sharding.spec), "mesh": dict(kernel.sharding.mesh.shape),
                                 "kernel_shard": list(kernel.addressable_shards[0].data.shape)}
    saved.close()
    raw.close()
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
