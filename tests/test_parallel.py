"""Sharding on a device mesh (xcs.parallel): 8 simulated CPU devices in a subprocess.

The 8-device checks run once in tests/parallel_worker.py (XLA_FLAGS must be set before jax is
imported, and this process already has jax with one device); each test asserts on its result.
"""

import json
import os
import re
import socket
import subprocess
import sys
import types

import pytest

from configs.default import get_config
from tests.conftest import ROOT
from xcs.parallel import mesh as mesh_lib
from xcs.validate import validate

MESHES = ("1x8", "2x4", "8x1")
TOL = 1e-5


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    out = tmp / "checks.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-m", "tests.parallel_worker", str(out), str(tmp / "runs")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1800)  # ~90 s of CPU; a guard against hangs
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("mesh", MESHES)
def test_one_train_step_equals_single_device(checks, mesh):
    c = checks[f"step_{mesh}"]
    assert c["params"] < TOL and c["opt_state"] < TOL and c["loss"] < TOL
    assert c["topk_scores"] < TOL and c["topk_ids_equal"]


@pytest.mark.parametrize("mesh", MESHES)
def test_eval_metrics_equal_single_device(checks, mesh):
    assert checks[f"eval_{mesh}"] < TOL


def test_every_loss_has_an_exact_sharded_form(checks):
    from xcs.losses import LOSSES

    for name in LOSSES:
        c = checks[f"loss_{name}"]
        assert c["value"] < TOL and c["grad"] < TOL, (name, c)


def test_head_and_its_optimizer_state_are_split_eight_ways(checks):
    c = checks["shards_1x8"]  # kernel [d=16, L=64] on 8 `model` devices: [16, 8] each
    assert c["kernel"] == [[16, 8]] * 8 and c["mu"] == [[16, 8]] * 8
    assert c["encoder_embedding"] == [512, 16]  # the encoder is replicated (data-parallel)
    assert c["head_bytes"]["per_device"] * 8 == c["head_bytes"]["total"]


def test_checkpoint_written_on_1x8_restores_onto_2x4(checks):
    c = checks["restore_1x8_on_2x4"]
    assert c["step"] == 3 and c["params"] < TOL
    assert c["mesh"] == {"data": 2, "model": 4} and c["spec"] == "P(None, 'model')" and c["kernel_shard"] == [16, 16]


def test_default_mesh_is_one_device_without_sharding():
    assert mesh_lib.make_mesh(get_config().mesh) is None


def fake_mesh(data, model):
    return types.SimpleNamespace(shape={"data": data, "model": model})


@pytest.mark.parametrize("key,value,message", [
    ("model.head.name", "sparse", "config.model.head.name='sparse'"),
    ("model.head.name", "lsh", "config.model.head.name='lsh'"),
    ("model.head.name", "factored", "config.model.head.name='factored'"),
    ("aux.clusters", 8, "config.aux.clusters=8"),
    ("train.batch_size", 31, "config.train.batch_size=31"),
])
def test_what_cannot_be_sharded_is_refused_by_key(key, value, message):
    config = get_config()
    *parents, name = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[name] = value
    config.mesh.shape = (2, 4)
    with pytest.raises(ValueError, match=re.escape(message)):
        validate(config)


def test_labels_must_split_evenly_over_the_model_axis():
    with pytest.raises(ValueError, match="63 labels do not split evenly over 4"):
        mesh_lib.check_config(get_config(), 63, fake_mesh(2, 4))


def test_bad_mesh_shapes_and_rules_name_the_key():
    config = get_config()
    config.mesh.shape = (3, 0)
    with pytest.raises(ValueError, match="config.mesh.shape"):
        mesh_lib.mesh_shape(config.mesh, 8)
    config.mesh.shape = (-1, 3)
    with pytest.raises(ValueError, match="not a multiple of 3"):
        mesh_lib.mesh_shape(config.mesh, 8)
    config.mesh.shape = (-1, 4)
    assert mesh_lib.mesh_shape(config.mesh, 8) == (2, 4)
    with pytest.raises(ValueError, match=r"config.mesh.rules\[0\]"):
        mesh_lib.parse_spec("_,modle", "config.mesh.rules[0]")


def test_rules_match_parameters_and_their_optimizer_moments():
    rules = mesh_lib.compiled_rules(get_config().mesh)
    assert mesh_lib.leaf_spec("head/kernel", 2, rules) == mesh_lib.PartitionSpec(None, "model")
    assert mesh_lib.leaf_spec("inner_states/head/inner_state/0/mu/head/kernel", 2, rules)[1] == "model"
    assert mesh_lib.leaf_spec("head/inner/bias", 1, rules) == mesh_lib.PartitionSpec("model")
    assert mesh_lib.leaf_spec("head/dense/kernel", 2, rules) == mesh_lib.PartitionSpec()  # intermediate layer
    assert mesh_lib.leaf_spec("encoder/embedding", 2, rules) == mesh_lib.PartitionSpec()
    # A stacked copy (async history [τ+1, d, L]) shards its trailing dims like the parameter.
    assert mesh_lib.leaf_spec("history/head/kernel", 3, rules) == mesh_lib.PartitionSpec(None, None, "model")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_localhost_match_one_process(tmp_path):
    """Two launch.py processes (one CPU device each, gloo collectives) on mesh (1, 2) == one process."""
    common = [sys.executable, os.path.join(ROOT, "launch.py"), "--config=configs/xmc.py:smoke",
              "--config.train.progress=none", "--config.train.steps=3", "--config.train.checkpoint_every=3"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    port = free_port()
    procs = [subprocess.Popen([*common, f"--workdir={tmp_path / 'multi'}", "--config.mesh.shape=(1,2)",
                               f"--coordinator=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    single = subprocess.run([*common, f"--workdir={tmp_path / 'single'}"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert single.returncode == 0, single.stderr[-4000:]
    assert "P@1" in outputs[0][0] and "P@1" not in outputs[1][0]  # process 0 reports
    ref = json.loads((tmp_path / "single" / "results.json").read_text())["test"]
    for results in (tmp_path / "multi" / "results.json", tmp_path / "multi" / "process_1" / "results.json"):
        got = json.loads(results.read_text())["test"]
        assert max(abs(got[k] - ref[k]) for k in ref) < TOL
    assert (tmp_path / "multi" / "checkpoints" / "3").is_dir()


def test_multihost_flags_are_checked():
    from xcs.parallel.distributed import initialize

    assert initialize(None, None, None) is False
    with pytest.raises(ValueError, match="--coordinator"):
        initialize(None, 2, 1)
    with pytest.raises(ValueError, match="--num_processes and --process_id"):
        initialize("127.0.0.1:1234", 2, None)
    with pytest.raises(ValueError, match="--process_id=2"):
        initialize("127.0.0.1:1234", 2, 2)


def test_sharded_benchmark_quick(tmp_path):
    out = tmp_path / "sharded.json"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    run = subprocess.run([sys.executable, "-m", "experiments.benchmarks.sharded", "--quick", "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {r["mesh"]: r for r in json.loads(out.read_text())["rows"]}
    # dense head + Adam: 3 copies of (d*L + L) float32 (+ Adam's int32 count), split over the `model` devices
    single = 3 * (rows["1x8"]["dim"] * rows["1x8"]["labels"] + rows["1x8"]["labels"]) * 4 / 2**20
    assert abs(rows["1x8"]["single_device_mb"] - single) < 1e-3
    assert abs(rows["1x8"]["ratio"] - 8.0) < 1e-3 and abs(rows["2x4"]["ratio"] - 4.0) < 1e-3
    assert rows["1x8"]["step_ms"] > 0 and rows["1x8"]["temp_mb_per_device"] < rows["2x4"]["temp_mb_per_device"]
