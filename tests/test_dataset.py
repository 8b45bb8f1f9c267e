"""load_dataset over every source, the data-directory convention, and config variant parsing."""

import numpy as np
import pytest

from configs import xmc
from xcs.config import parse_arg
from xcs.data.dataset import load_dataset

TRAIN = """4 6 3
0,2 0:0.5 3:0.5
1 1:1.0
 2:0.3 5:0.7
2 4:1.0
"""
TEST = """2 6 3
0 0:1.0
1,2 1:0.5 4:0.5
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "train.txt").write_text(TRAIN)
    (d / "test.txt").write_text(TEST)
    monkeypatch.setenv("XCS_DATA_DIR", str(tmp_path))
    return d


@pytest.mark.parametrize("source", ["xmc_repo", "tfds"])
def test_any_directory_name_under_xcs_data_dir_loads(data_dir, source):
    config = xmc.get_config("data=tiny")
    config.data.source = source
    data = load_dataset(config.data, seed=0)
    assert (data.num_features, data.num_labels) == (6, 3)
    assert data.train.num_points == 4 and data.test.num_points == 2
    assert data.train.labels.to_lists() == [[0, 2], [1], [], [2]]
    assert data.stats()["train_points_without_labels"] == 1


def test_validation_fraction_holds_out_part_of_train(data_dir):
    config = xmc.get_config("data=tiny")
    config.data.validation_fraction = 0.25
    data = load_dataset(config.data, seed=0)
    assert data.train.num_points == 3 and data.test.num_points == 1
    rows = sorted(map(tuple, data.train.labels.to_lists() + data.test.labels.to_lists()))
    assert rows == sorted([(0, 2), (1,), (), (2,)])


def test_missing_data_set_names_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XCS_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_dataset(xmc.get_config("data=nope").data, seed=0)


def test_synthetic_source_is_deterministic():
    config = xmc.get_config("smoke")
    a, b = load_dataset(config.data, 0), load_dataset(config.data, 1)
    np.testing.assert_array_equal(a.train.features.indices, b.train.features.indices)


def test_variant_parsing():
    v = parse_arg("data=wn,smoke", {"data": "synthetic", "smoke": False})
    assert v.data == "wn" and v.smoke is True
    assert parse_arg("smoke=0", {"smoke": True}).smoke is False
    with pytest.raises(KeyError, match="smok"):
        parse_arg("smok", {"smoke": False})
    with pytest.raises(ValueError, match="needs a value"):
        parse_arg("data", {"data": "synthetic"})
