"""docs/extending.md's code, run as written: a head and a prune-and-regrow algorithm defined outside xcs,
registered with one line each, trained end to end through the loop."""

from __future__ import annotations

import os
import re

import pytest

from configs import dst, xmc
from tests.conftest import ROOT
from xcs import registry
from xcs.core.errors import ConfigError
from xcs.sparsity import actions as sparsity_actions
from xcs.train.loop import train_and_evaluate
from xcs.validate import validate


@pytest.fixture(scope="module")
def guide() -> dict:
    """The namespace of the guide's python blocks, executed in order."""
    with open(os.path.join(ROOT, "docs", "extending.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    exec(compile("\n".join(blocks), "docs/extending.md", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_a_head_from_the_guide_trains_end_to_end(guide, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.HEADS, "low_rank", guide["METHOD"])  # the guide's one registry line
    config = xmc.get_config("smoke")
    config.model.head.name = "low_rank"
    results = train_and_evaluate(config, str(tmp_path))
    assert results["test"]["P@1"] > 30.0  # smoke data: the dense head reaches ~70, chance is < 1
    assert os.path.exists(tmp_path / "predictions.txt")
    config.model.encoder.width = 1
    with pytest.raises(ConfigError, match="config.model.encoder.width=1: must be >= 2 for the low-rank head"):
        validate(config)  # its own check runs in validate


def test_a_regrowth_algorithm_from_the_guide_rewires_the_sparse_head(guide, monkeypatch, tmp_path):
    calls = []

    def counted(*args):
        calls.append(1)
        return guide["activation_scores"](*args)

    monkeypatch.setitem(sparsity_actions.REGROWTH, "activation", counted)  # the guide's one registry line
    config = dst.get_config("smoke")
    config.sparsity.algorithm = "activation"
    results = train_and_evaluate(config, str(tmp_path))
    assert len(calls) >= 1 and results["test"]["P@1"] > 10.0
    config.sparsity.algorithm = "nonsense"
    with pytest.raises(ConfigError, match="config.sparsity.algorithm='nonsense'.*activation"):
        validate(config)
