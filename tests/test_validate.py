"""validate(config) and the command line refuse bad input before any work: one line, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from configs import default
from tests.conftest import ROOT
from xcs.core.errors import ConfigError, UserError
from xcs.validate import validate


def _set(config, key, value):
    *parents, name = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[name] = value


# (overrides, the key the one-line message must name)
BAD = [
    ({"train.batch_size": 0}, "config.train.batch_size=0"),
    ({"train.batch_size": -4}, "config.train.batch_size=-4"),
    ({"train.steps": -5}, "config.train.steps=-5"),
    ({"train.epochs": 0.0}, "config.train.epochs=0.0"),
    ({"data.validation_fraction": 1.5}, "config.data.validation_fraction=1.5"),
    ({"data.validation_fraction": -0.2}, "config.data.validation_fraction=-0.2"),
    ({"model.head.name": "nonsense"}, "config.model.head.name='nonsense'"),
    ({"model.encoder.name": "nonsense"}, "config.model.encoder.name='nonsense'"),
    ({"train.optimizer.head.name": "foo"}, "config.train.optimizer.head.name='foo'"),
    ({"train.schedule": "linear"}, "config.train.schedule='linear'"),
    ({"loss.name": "nonsense"}, "config.loss.name='nonsense'"),
    ({"eval.top_k": 0}, "config.eval.top_k=0"),
    ({"data.source": "nonsense"}, "config.data.source='nonsense'"),
    ({"data.synthetic.num_labels": 0}, "config.data.synthetic.num_labels"),
    ({"mesh.shape": (0, 1)}, "config.mesh.shape=(0, 1)"),
    # one per combination rule of the declarations
    ({"model.head.name": "factored"}, "config.loss.name='softmax'"),  # losses
    ({"model.head.name": "lsh", "model.head.intermediate": 64}, "config.model.head.intermediate=64"),
    ({"model.head.name": "lsh", "aux.clusters": 8}, "config.aux.clusters=8"),
    ({"model.head.name": "lsh", "eval.knn.neighbors": 4}, "with the lsh head it needs lsh.predict='exact'"),  # knn
    ({"model.head.name": "sparse", "mesh.shape": (2, 4)}, "config.model.head.name='sparse'"),  # mesh
    ({"model.head.name": "factored", "loss.name": "squared_error", "train.mode": "async"},
     "config.train.mode='async'"),  # async SGD
    ({"model.head.name": "lsh", "model.head.matmul_dtype": "bfloat16"}, "config.model.head.matmul_dtype"),  # bf16
    ({"model.head.matmul_dtype": "bfloat16", "mesh.shape": (1, 2)}, "config.model.head.matmul_dtype"),
    ({"model.head.matmul_dtype": "float16"}, "config.model.head.matmul_dtype='float16'"),
    ({"model.head.name": "factored", "loss.name": "auto"}, "config.loss.name='auto'"),  # auto: softmax or ova
    ({"loss.name": "auto", "loss.auto_share": 0.0}, "config.loss.auto_share=0.0"),
    ({"loss.name": "bce", "eval.knn.neighbors": 10}, "config.loss.name='bce'"),  # the kNN mix: softmax or ova
    ({"model.encoder.name": "kronecker"}, "config.data.source='synthetic'"),  # the encoder's data sources
    ({"data.source": "kronecker"}, "config.model.encoder.name='bag'"),  # a source claimed by one encoder
    # each method's own check
    ({"model.head.name": "sparse", "sparsity.fan_in": 1000}, "config.sparsity.fan_in=1000"),
    ({"model.head.name": "sparse", "sparsity.algorithm": "magic"}, "config.sparsity.algorithm='magic'"),
    ({"model.head.name": "sparse", "sparsity.algorithm": "set", "train.steps": 100,
      "sparsity.rewire_interval": 90}, "config.sparsity.rewire_interval=90"),
    ({"model.head.name": "lsh", "lsh.family": "md5"}, "config.lsh.family='md5'"),
    ({"model.head.name": "factored", "loss.name": "zloss", "factored.singular_band": 1.0},
     "config.factored.singular_band=1.0"),
    ({"model.encoder.gated.enabled": True, "model.encoder.gated.kind": "forest"}, "config.model.encoder.gated.kind"),
    ({"aux.clusters": 8, "aux.alpha": 2.0}, "config.aux.alpha=2.0"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[m for _, m in BAD])
def test_bad_configs_are_refused_naming_the_key(overrides, message):
    config = default.get_config()
    for key, value in overrides.items():
        _set(config, key, value)
    with pytest.raises(UserError) as raised:
        validate(config)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_the_default_and_every_smoke_config_pass():
    from configs import dst, gated, kronecker, xmc

    for module in (xmc, dst, gated, kronecker):
        validate(module.get_config("smoke"))
    validate(default.get_config())
    validate(xmc.get_config("fast"))


def test_config_error_names_key_value_and_rule():
    e = ConfigError("train.steps", -5, "must be >= 0")
    assert str(e) == "config.train.steps=-5: must be >= 0" and isinstance(e, ValueError)


CLI_BAD = [
    (["--config.train.batch_size=0"], "config.train.batch_size=0"),
    (["--config.trian.steps=3"], "config.trian.steps is not a config key (did you mean train?)"),
    (["--config.train.optimizer.name=foo"], "config.train.optimizer.name is not a config key"),
    (["--config.model.head.name=factored"], "config.loss.name='softmax': the factored head trains"),
]


@pytest.mark.parametrize("args,message", CLI_BAD, ids=[m for _, m in CLI_BAD])
def test_command_line_user_error_is_one_line_exit_2_nothing_written(args, message, tmp_path):
    workdir = tmp_path / "w"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "launch.py"), "--config=xmc:smoke", *args,
                           f"--workdir={workdir}"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "XCS_HUGE_PAGES": "0"})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not workdir.exists()
