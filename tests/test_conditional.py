"""Tree-gated layer (xcs.gated.layer) against the naive per-example sum of selected blocks."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import gated as gated_configs
from tests.conftest import ROOT
from xcs.data import region
from xcs.gated.layer import (
    GatedDense,
    GatedSpec,
    dense_top,
    gate_unit_ids,
    gated_spec,
    layer_cost,
    matched_hidden,
    path_nodes,
)
from xcs.registry import build_model


def random_layer(spec, d_in, d_out, batch, seed):
    """The layer, random (non-zero) parameters and inputs; biases random so that they are checked too."""
    layer = GatedDense(d_out, spec)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, d_in)), jnp.float32)
    shapes = jax.eval_shape(layer.init, jax.random.PRNGKey(0), x)["params"]
    params = {name: jnp.asarray(rng.normal(size=shapes[name].shape), jnp.float32) for name in ("kernel", "bias")}
    return layer, params, x


# References written here from the layer's definition (Cho & Bengio 2014, and GatedSpec's documented gate units),
# not from xcs.gated: each output block's gating units, the walk down the tree (or the table row), and the
# per-example sum of the blocks it selects.


def gate_units_by_hand(gate_units, k, d_in, n_out):
    """[n_out, k] input units whose signs gate output block o. distinct: o·k, o·k + 1, ..., o·k + k − 1 (mod d_in),
    a run of k units of its own per block; shared: 0, ..., k − 1 for every block."""
    if gate_units == "shared":
        return np.array([[j for j in range(k)] for _ in range(n_out)], int).reshape(n_out, k)
    return np.array([[(o * k + j) % d_in for j in range(k)] for o in range(n_out)], int).reshape(n_out, k)


def walk_by_hand(kind, bits):
    """Blocks one example uses for one output block, from its gate bits g_1..g_k. tree: the root 0, then at each
    level the child 2n + 1 + g_j of node n (heap order); table: the one row g_1..g_k read in binary, g_1 highest."""
    if kind == "tree":
        node, path = 0, [0]
        for bit in bits:
            node = 2 * node + 1 + bit
            path.append(node)
        return path
    return [int("".join(map(str, bits)) or "0", 2)]


def naive_gated(kernel, bias, x, spec):
    """Per example and output block, a Python loop over the blocks it selects: y = x Σ W[c] + Σ b[c] (float64)."""
    kernel, bias, x = np.asarray(kernel, np.float64), np.asarray(bias, np.float64), np.asarray(x, np.float64)
    n_out, size = kernel.shape[1], kernel.shape[3]
    units = gate_units_by_hand(spec.gate_units, spec.depth, x.shape[1], n_out)
    y = np.zeros((x.shape[0], n_out, size))
    for i in range(x.shape[0]):
        for o in range(n_out):
            for c in walk_by_hand(spec.kind, [int(x[i, u] > 0) for u in units[o]]):
                y[i, o] += x[i] @ kernel[c, o] + bias[c, o]
    return y.reshape(x.shape[0], n_out * size)


def ids_by_hand(kind, bits):
    """walk_by_hand for arrays of bits [..., k] (jax.numpy, for the autodiff references): node ids [..., k + 1]
    (tree) or the table row [..., 1]."""
    if kind == "tree":
        nodes = [jnp.zeros(bits.shape[:-1], jnp.int32)]
        for j in range(bits.shape[-1]):
            nodes.append(2 * nodes[-1] + 1 + bits[..., j])
        return jnp.stack(nodes, axis=-1)
    k = bits.shape[-1]
    return jnp.sum(bits * jnp.asarray([2 ** (k - 1 - j) for j in range(k)], jnp.int32), -1, keepdims=True)


@pytest.mark.parametrize("kind", ["tree", "table"])
@pytest.mark.parametrize("block_size,gate_units,train", [(0, "distinct", False), (4, "distinct", True),
                                                          (4, "shared", False)])
def test_gathered_equals_naive_sum_of_selected_blocks(kind, block_size, gate_units, train):
    for seed, depth in ((0, 0), (2, 5)):
        spec = GatedSpec(kind=kind, depth=depth, block_size=block_size, gate_units=gate_units,
                         gate_gradient="straight_through" if train else "none")
        layer, params, x = random_layer(spec, 13, 12, 9, seed)
        got = layer.apply({"params": params}, x, train)
        want = naive_gated(params["kernel"], params["bias"], x, spec)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_all_negative_gates_use_exactly_the_root_path():
    depth, d_in = 4, 7
    spec = GatedSpec(kind="tree", depth=depth, gate_units="shared")
    layer, params, x = random_layer(spec, d_in, 5, 3, 0)
    x = x.at[:, :depth].set(-jnp.abs(x[:, :depth]) - 0.1)
    got = layer.apply({"params": params}, x)
    # Always the left child: nodes 0, 1, 3, 7, 15 = 2^j - 1.
    root_path = [2**j - 1 for j in range(depth + 1)]
    np.testing.assert_array_equal(np.asarray(path_nodes(jnp.zeros((1, depth), jnp.int32)))[0], root_path)
    w = params["kernel"][np.array(root_path), 0].sum(0)
    b = params["bias"][np.array(root_path), 0].sum(0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(x @ w + b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", [0, 1, 4, 7])
def test_parameter_count_is_2_to_the_k_plus_1_minus_1_blocks_all_reachable(depth):
    """The tree stores 2^(k+1) − 1 blocks per output block, the table 2^k; every stored block is used by some
    input (1024 random inputs reach them all, at k = 1 and 7: nothing stored is dead), and one example uses k + 1
    of them (tree) or 1 (table): the blocks that receive a gradient."""
    d_in, d_out, size = 8, 8, 4
    for kind, blocks, per_example in (("tree", 2 ** (depth + 1) - 1, depth + 1), ("table", 2**depth, 1)):
        spec = GatedSpec(kind=kind, depth=depth, block_size=size)
        layer, params, x = random_layer(spec, d_in, d_out, 1024, depth)
        assert params["kernel"].shape == (blocks, d_out // size, d_in, size)
        assert params["bias"].shape == (blocks, d_out // size, size)
        assert layer_cost(spec, d_in, d_out)["params"] == params["kernel"].size
        if depth not in (1, 7):
            continue  # the gradients below compile four times: checked at one small and one deep tree
        for batch, used in ((x, blocks), (x[:1], per_example)):
            grads = jax.jit(jax.grad(lambda p, b=batch, f=layer: jnp.sum(jnp.sin(f.apply({"params": p}, b)))))(params)
            touched = np.abs(np.asarray(grads["bias"])).sum(-1) > 0  # [blocks, out_blocks]
            assert list(touched.sum(0)) == [used] * (d_out // size)


@pytest.mark.parametrize("kind", ["tree", "table"])
@pytest.mark.parametrize("gate_gradient", ["none", "straight_through"])
@pytest.mark.parametrize("copies", [1, 32])  # 32 copies of one example: the top levels as one product
def test_gradients_reach_only_the_blocks_on_each_examples_path(kind, gate_gradient, copies):
    depth, d_in, d_out, size = 3, 9, 6, 3
    spec = GatedSpec(kind=kind, depth=depth, block_size=size, gate_gradient=gate_gradient)
    assert dense_top(spec, copies) == {1: (0, 0), 32: (15, 4) if kind == "tree" else (8, 1)}[copies]
    layer, params, x = random_layer(spec, d_in, d_out, 1, 3)
    units = gate_units_by_hand(spec.gate_units, depth, d_in, d_out // size)
    for i in range(4):
        xi = jnp.asarray(np.random.default_rng(10 + i).normal(size=(1, d_in)), jnp.float32)
        xi = jnp.tile(xi, (copies, 1))
        grads = jax.grad(lambda p, xi=xi: jnp.sum(jnp.sin(layer.apply({"params": p}, xi, True))))(params)
        used = np.zeros(params["kernel"].shape[:2], bool)  # [blocks, out_blocks]
        for o in range(d_out // size):
            for c in walk_by_hand(kind, [int(xi[0, u] > 0) for u in units[o]]):
                used[c, o] = True
        g_kernel = np.abs(np.asarray(grads["kernel"])).sum(axis=(2, 3))
        g_bias = np.abs(np.asarray(grads["bias"])).sum(axis=2)
        assert np.all(g_kernel[~used] == 0.0) and np.all(g_bias[~used] == 0.0)
        assert np.all(g_kernel[used] > 0.0) and np.all(g_bias[used] > 0.0)


def dense_reference(params, x, spec):
    """y = sum over each example's path of x W[node] + b[node], as one-hot weights over all blocks (autodiff)."""
    kernel, bias = params["kernel"], params["bias"]
    units = gate_units_by_hand(spec.gate_units, spec.depth, x.shape[1], kernel.shape[1])
    ids = ids_by_hand(spec.kind, (x[:, units] > 0).astype(jnp.int32))
    on_path = jnp.sum(jax.nn.one_hot(ids, kernel.shape[0]), axis=2)  # [B, O, blocks]
    return (jnp.einsum("bi,bon,nois->bos", x, on_path, kernel)
            + jnp.einsum("bon,nos->bos", on_path, bias)).reshape(x.shape[0], -1)


@pytest.mark.parametrize("kind,depth", [("tree", 0), ("tree", 3), ("tree", 5), ("table", 2), ("table", 4)])
@pytest.mark.parametrize("dense_level_blocks", [0, 1, 4, 16])
def test_top_levels_as_one_product_equal_the_dense_reference_with_gradients(kind, depth, dense_level_blocks):
    spec = GatedSpec(kind=kind, depth=depth, block_size=4, gate_units="distinct", dense_level_blocks=dense_level_blocks)
    layer, params, x = random_layer(spec, 16, 8, 64, depth + dense_level_blocks)  # 64: up to 16 blocks per level
    r = jnp.asarray(np.random.default_rng(1).normal(size=(64, 8)), jnp.float32)
    loss = lambda p, x: jnp.sum(jnp.sin(layer.apply({"params": p}, x)) * r)
    want_loss = lambda p, x: jnp.sum(jnp.sin(dense_reference(p, x, spec)) * r)
    np.testing.assert_allclose(np.asarray(layer.apply({"params": params}, x)),
                               naive_gated(params["kernel"], params["bias"], x, spec), rtol=1e-4, atol=1e-4)
    got, want = jax.grad(loss, argnums=(0, 1))(params, x), jax.grad(want_loss, argnums=(0, 1))(params, x)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)


def test_dense_top_follows_the_batch_and_the_limit():
    tree = GatedSpec(kind="tree", depth=6, dense_level_blocks=16)
    assert [dense_top(tree, b) for b in (1, 3, 4, 8, 16, 32, 64, 4096)] == [
        (0, 0), (0, 0), (1, 1), (3, 2), (7, 3), (15, 4), (31, 5), (31, 5)]
    assert dense_top(GatedSpec(kind="tree", depth=2, dense_level_blocks=16), 256) == (7, 3)  # the whole tree
    assert dense_top(GatedSpec(kind="tree", depth=6, dense_level_blocks=0), 256) == (0, 0)
    assert [dense_top(GatedSpec(kind="table", depth=3), b) for b in (31, 32)] == [(0, 0), (8, 1)]
    assert dense_top(GatedSpec(kind="table", depth=5), 4096) == (0, 0)  # 32 blocks > 16
    with pytest.raises(ValueError, match="dense_level_blocks=-1"):
        GatedSpec(dense_level_blocks=-1)


@pytest.mark.parametrize("dense_level_blocks,gathers", [(0, True), (16, False)])
def test_a_small_tree_at_a_large_batch_is_one_product_without_gathers(dense_level_blocks, gathers):
    spec = GatedSpec(kind="tree", depth=3, dense_level_blocks=dense_level_blocks)
    layer, params, x = random_layer(spec, 8, 8, 64, 0)
    text = str(jax.make_jaxpr(jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x))))(params))
    # One gather always reads the gating units of x; the blocks' gathers and scatters come on top.
    assert (text.count("gather[") > 1) == gathers and ("scatter" in text) == gathers


def test_straight_through_gradient_of_a_gate_unit_is_the_sibling_difference():
    depth, d_in, d_out = 2, 5, 4
    spec = GatedSpec(kind="tree", depth=depth, gate_units="shared", gate_gradient="straight_through")
    layer, params, x = random_layer(spec, d_in, d_out, 1, 5)
    x = x.at[0, :depth].set(jnp.array([0.7, -0.4]))  # path 0 -> 2 -> 5
    kernel, bias = params["kernel"][:, 0], params["bias"][:, 0]
    dy = jnp.arange(1.0, d_out + 1.0)
    gx = jax.grad(lambda x: layer.apply({"params": params}, x, True)[0] @ dy)(x)
    gx_none = jax.grad(lambda x: layer.apply({"params": params}, x, False)[0] @ dy)(x)
    w = kernel[np.array([0, 2, 5])].sum(0)
    np.testing.assert_allclose(np.asarray(gx_none[0]), np.asarray(w @ dy), rtol=1e-5)
    # Bit 0 chooses child 2 (set) over 1, bit 1 chooses 6 over 5 (unset) below node 2.
    for j, (one, zero) in enumerate(((2, 1), (6, 5))):
        st = (x[0] @ (kernel[one] - kernel[zero]) + bias[one] - bias[zero]) @ dy
        np.testing.assert_allclose(float(gx[0, j] - gx_none[0, j]), float(st), rtol=1e-4)


def straight_through_reference(params, x, spec):
    """dense_reference plus t_j (x (W[one_j] - W[zero_j]) + b[one_j] - b[zero_j]) with t_j = pre_j - stop_grad(pre_j):
    zero forward, d / d pre_j the sibling difference; the siblings as one-hot weights over all blocks (autodiff)."""
    kernel, bias = params["kernel"], params["bias"]
    n, n_out = kernel.shape[:2]
    units = gate_units_by_hand(spec.gate_units, spec.depth, x.shape[1], n_out)
    pre = x[:, units]  # [B, O, k]
    bits = (pre > 0).astype(jnp.int32)
    y = dense_reference(params, x, spec).reshape(x.shape[0], n_out, -1)
    for j in range(spec.depth):
        if spec.kind == "tree":
            parent = ids_by_hand("tree", bits)[..., j]
            one, zero = 2 * parent + 2, 2 * parent + 1
        else:
            flipped = [bits.at[..., j].set(v) for v in (1, 0)]
            one, zero = (ids_by_hand("table", f)[..., 0] for f in flipped)
        t = (pre[..., j] - jax.lax.stop_gradient(pre[..., j]))[..., None]  # [B, O, 1]
        sibling = jax.nn.one_hot(one, n) - jax.nn.one_hot(zero, n)  # [B, O, blocks]
        y = y + t * (jnp.einsum("bi,bon,nois->bos", x, sibling, kernel) + jnp.einsum("bon,nos->bos", sibling, bias))
    return y.reshape(x.shape[0], -1)


@pytest.mark.parametrize("kind,depth,dense_level_blocks", [("tree", 5, 16), ("tree", 5, 0), ("tree", 1, 16),
                                                            ("table", 3, 16), ("table", 3, 0)])
def test_straight_through_gradients_equal_the_reference(kind, depth, dense_level_blocks):
    spec = GatedSpec(kind=kind, depth=depth, block_size=4, gate_units="distinct", gate_gradient="straight_through",
                     dense_level_blocks=dense_level_blocks)
    layer, params, x = random_layer(spec, 16, 8, 64, depth + 7)
    r = jnp.asarray(np.random.default_rng(2).normal(size=(64, 8)), jnp.float32)
    loss = lambda p, x: jnp.sum(jnp.sin(layer.apply({"params": p}, x, True)) * r)
    want_loss = lambda p, x: jnp.sum(jnp.sin(straight_through_reference(p, x, spec)) * r)
    np.testing.assert_allclose(np.asarray(layer.apply({"params": params}, x, True)),
                               naive_gated(params["kernel"], params["bias"], x, spec), rtol=1e-4, atol=1e-4)
    got, want = jax.grad(loss, argnums=(0, 1))(params, x), jax.grad(want_loss, argnums=(0, 1))(params, x)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)
    # The term matters: without it the input's gradient differs.
    plain = jax.grad(lambda x: jnp.sum(jnp.sin(layer.apply({"params": params}, x, False)) * r))(x)
    assert not np.allclose(np.asarray(plain), np.asarray(got[1]), atol=1e-3)


def test_spec_and_cost_errors_name_the_key():
    with pytest.raises(ValueError, match="gated.kind"):
        GatedSpec(kind="forest")
    with pytest.raises(ValueError, match="block_size=5"):
        GatedSpec(block_size=5).out_blocks(12)
    with pytest.raises(ValueError, match="depth=4 needs 4"):
        gate_unit_ids(GatedSpec(depth=4), 3, 1)
    assert matched_hidden("dense_flops", 3, 8, 8) == 16  # 4 blocks of 8x8 = 2 * 16 * (8 + 8) / 2
    assert layer_cost(GatedSpec(kind="dense_params", depth=2), 8, 8)["params"] == 7 * 64


def test_bag_encoder_with_gated_residual_block_and_unchanged_when_off():
    config = default.get_config()
    config.model.encoder.width = 16
    batch = {"feat_idx": jnp.array([[1, 2], [3, 0]]), "feat_val": jnp.array([[0.5, 0.5], [1.0, 0.0]])}
    plain = build_model(config, 10, 7).encoder
    names_off = set(jax.eval_shape(lambda: plain.init(jax.random.PRNGKey(0), batch, False))["params"]["mlp"])
    assert not any("gated" in n for n in names_off)
    config.model.encoder.gated.enabled = True
    config.model.encoder.gated.block_size = 8
    gated = build_model(config, 10, 7).encoder
    params = jax.eval_shape(lambda: gated.init(jax.random.PRNGKey(0), batch, False))["params"]
    assert params["mlp"]["gated"]["kernel"].shape == (31, 2, 16, 8)
    assert jax.eval_shape(lambda p: gated.apply({"params": p}, batch, False), params).shape == (2, 16)
    config.model.encoder.gated.position = "input"
    with pytest.raises(ValueError, match="gated.position='input'"):
        jax.eval_shape(lambda: build_model(config, 10, 7).encoder.init(jax.random.PRNGKey(0), batch, False))


def test_region_task_is_deterministic_with_one_label_per_point():
    spec = region.RegionSpec(num_train=300, num_test=50, dim=6, region_bits=3, num_classes=4)
    x, labels = region.generate_split(spec, "train")
    x2, labels2 = region.generate_split(spec, "train")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(labels.indices, labels2.indices)
    assert x.shape == (300, 6) and np.all(labels.row_lengths() == 1)
    a = region.classifiers(spec)
    r = region.region_of(x.astype(np.float64), 3)
    want = [int(np.argmax(x[i].astype(np.float64) @ a[r[i]])) for i in range(300)]
    assert labels.indices.tolist() == want
    with pytest.raises(ValueError, match="region_bits"):
        region.RegionSpec(dim=2, region_bits=3)


def test_straight_through_is_refused_where_the_gates_are_raw_inputs():
    with pytest.raises(ValueError, match="gate_gradient='straight_through' with position='input'"):
        gated_spec(gated_configs.get_config("smoke,st"))  # region: the gates are signs of x
    assert gated_spec(gated_configs.get_config("smoke,st,data=synthetic")).gate_gradient == "straight_through"


def test_gated_table_sweep_has_the_straight_through_row_on_xc_data_only(tmp_path):
    from configs.tables import gated as table
    from xcs import sweep

    for arg, layers in (("data=region,seeds=2", 4), ("data=wordnet_hypernyms,seeds=1", 5)):
        # plan builds every run's config with its overrides: a refused combination fails here
        runs = sweep.plan(os.path.join(ROOT, f"configs/tables/gated.py:{arg}"), str(tmp_path / "runs"))
        labels = []
        for run in runs:
            overrides = dict(run.overrides)
            config = table.get_config(overrides.pop("arg", arg))  # each row's own `:ARG`
            sweep.apply_overrides(config, overrides, run.name)
            labels.append(table._row(config.to_dict()))
        assert len(runs) == layers * (2 if "seeds=2" in arg else 1) and len(set(labels)) == layers
        assert sum("straight-through" in label for label in labels) == (layers == 5)


def test_smoke_training_through_launch(tmp_path):
    run = subprocess.run(
        [sys.executable, "launch.py", "--config=configs/gated.py:smoke,layer=tree", f"--workdir={tmp_path}",
         "--config.train.progress=none"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["data"]["train_labels_per_point"] == 1.0
    assert 0.0 <= results["test"]["P@1"] <= 100.0


def test_benchmark_rows_and_linear_fit():
    from experiments.benchmarks import gated as bench

    result = bench.run(depths=[0, 2], batches=[2], dim=8, max_dense_mb=0.001, rounds=1, call_s=0.0005)
    keys = ["depth", "batch", "params", "flops_per_example", "gated_ms", "dense_same_flops_ms",
            "dense_same_params_ms"]
    assert [list(r) for r in result["rows"]] == [keys] * 2
    assert [r["params"] for r in result["rows"]] == [64, 7 * 64]
    assert [r["flops_per_example"] for r in result["rows"]] == [2 * 64, 2 * 3 * 64]
    assert all(r["gated_ms"] > 0 and r["dense_same_flops_ms"] > 0 for r in result["rows"])
    # 64 weights fit in the 0.001 MiB (262 floats) cap, 448 do not.
    assert result["rows"][0]["dense_same_params_ms"] > 0 and result["rows"][1]["dense_same_params_ms"] is None
    # An exact line fits with R^2 = 1.
    rows = [dict(depth=k, batch=1, gated_ms=0.5 + 0.25 * k) for k in range(5)]
    fit = bench.linear_fits(rows)[0]
    assert abs(fit["r2"] - 1.0) < 1e-12 and abs(fit["ms_per_depth"] - 0.25) < 1e-12
    # Two straight pieces (cache, then main memory): the whole fit is worse, each piece exact.
    rows = [dict(depth=k, batch=1, gated_ms=1.0 + k + 3.0 * max(0, k - 6)) for k in range(13)]
    whole, low, high = bench.linear_fits(rows, split_depth=6)
    assert whole["r2"] < 0.95 and (low["depths"], high["depths"]) == ("0-6", "6-12")
    assert abs(low["ms_per_depth"] - 1.0) < 1e-9 and abs(high["ms_per_depth"] - 4.0) < 1e-9
    assert abs(low["r2"] - 1.0) < 1e-12 and abs(high["r2"] - 1.0) < 1e-12


def test_benchmark_cache_depth_and_fresh_batches():
    from experiments.benchmarks import gated as bench

    # 32 MiB hold 128 blocks of 256^2 floats: the whole tree of depth 6 (127 blocks), not of depth 7.
    assert bench.cache_depth(256, 32.0) == 6 and bench.cache_depth(256, 31.7) == 5
    assert bench.cache_depth(64, 32.0) == 10
    # Each call starts where the last one stopped, so consecutive calls see different batches.
    pool = jnp.arange(10.0).reshape(10, 1, 1)
    timer = bench.StreamTimer(lambda w, x: x * w, jnp.ones(()), pool, call_s=1e-9)
    assert timer.n == 1
    seen = []
    timer._fn = lambda w, pool, start, n: seen.append(int(start)) or jnp.zeros(())
    for _ in range(3):
        timer.call()
    assert seen == [(seen[0] + i) % 10 for i in range(3)]


def test_benchmark_cold_protocol_clears_the_caches_before_every_call():
    from experiments.benchmarks import gated as bench

    events = []
    pool = jnp.arange(4.0).reshape(4, 1, 1)
    timer = bench.ColdTimer(lambda w, x: x * w, jnp.full((), 2.0), pool, evict=lambda: events.append("evict"))
    assert events == ["evict"] * 2  # the compiling call and the first timed one
    fn = timer._fn
    timer._fn = lambda w, pool, i: events.append(int(i)) or fn(w, pool, i)
    for _ in range(5):
        timer.call()
    # Each call: the caches cleared first, then the next example of the pool (wrapping round).
    assert events[2:] == ["evict", 2, "evict", 3, "evict", 0, "evict", 1, "evict", 2]
    assert float(fn(jnp.full((), 2.0), pool, jnp.asarray(3))[0, 0]) == 6.0
    assert bench.CacheEvictor(1.0)._buffer.nbytes == 4 * 2**20  # four times the cache
    result = bench.run(depths=[0, 1, 2], batches=[1], dim=8, max_dense_mb=1.0, rounds=3, cache_mb=0.25,
                       protocol="cold")
    assert result["cache_depth"] is None and [f["depths"] for f in result["fits"]] == ["0-2"]
    assert all(r["gated_ms"] > 0 and r["dense_same_params_ms"] > 0 for r in result["rows"])
    with pytest.raises(ValueError, match="protocol 'warm'"):
        bench.run(depths=[0], batches=[1], dim=8, max_dense_mb=1.0, protocol="warm")


def test_benchmark_cold_protocol_refuses_an_accelerator(monkeypatch):
    from experiments.benchmarks import gated as bench

    monkeypatch.setattr(bench.jax, "default_backend", lambda: "gpu")
    with pytest.raises(ValueError, match="not those of the gpu device"):
        bench.run(depths=[0], batches=[1], dim=8, max_dense_mb=1.0, protocol="cold")


def test_forms_benchmark_compares_the_same_function_and_reports_every_form():
    from experiments.benchmarks import gated_forms as bench

    x = jnp.asarray(np.random.default_rng(0).normal(size=(64, 16)), jnp.float32)
    layer, params, _ = random_layer(GatedSpec(depth=3, block_size=4), 16, 16, 64, 1)
    params = {"params": params}
    outputs = [bench.form_apply(form, 3, 16, 4)(params, x) for form in bench.FORMS]
    steps = [bench.train_apply(bench.form_apply(form, 3, 16, 4))(params, x) for form in bench.FORMS]
    for y, s in zip(outputs[1:], steps[1:]):
        np.testing.assert_allclose(np.asarray(y), np.asarray(outputs[0]), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(float(s), float(steps[0]), rtol=1e-4)
    # The straight-through forms: the same output, the same gradients, and not those without the term.
    st = [jax.grad(lambda p, x, f=f: jnp.sum(jnp.tanh(bench.form_apply(f, 3, 16, 4)(p, x))), argnums=(0, 1))(params, x)
          for f in bench.STRAIGHT_THROUGH_FORMS]
    for g, w in zip(jax.tree.leaves(st[1]), jax.tree.leaves(st[0])):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4)
    plain = jax.grad(lambda x: jnp.sum(jnp.tanh(bench.form_apply("levels", 3, 16, 4)(params, x))))(x)
    assert not np.allclose(np.asarray(plain), np.asarray(st[0][1]), atol=1e-3)
    rows = bench.measure(depths=[0, 2], batches=[16], dim=8, block_size=4, rounds=1, call_s=0.0005)
    assert [(r["depth"], r["batch"]) for r in rows] == [(0, 16), (2, 16)]
    for r in rows:
        assert all(r[f"{f}_{m}_ms"] > 0 for f in bench.FORMS for m in ("fwd", "train"))
        assert all(r[f"{f}_train_ms"] > 0 for f in bench.STRAIGHT_THROUGH_FORMS)
        assert r["fwd_speedup"] == r["before_fwd_ms"] / r["levels_fwd_ms"]
