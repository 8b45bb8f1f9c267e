"""Tests for the TFDS builder of XC-repository files (xcs/data/tfds_builder.py), without TF."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xcs.data import tfds_builder, xmc_repo


def _write(path, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def _assert_same(a, b):
    assert a.num_cols == b.num_cols
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.indices.dtype == b.indices.dtype and a.values.dtype == b.values.dtype


TRAIN = "5 8 4\n0,2 1:0.5 7:2\n 3:1.5\n3\n\n1 0:-1 2:0.25 5:4\n"
TEST = "2 8 4\n1 6:1\n0,3 2:2\n"


def test_builds_single_file_dir_and_matches_the_direct_reader(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    _write(manual / "train.txt", TRAIN)
    _write(manual / "test.txt", TEST)
    data_dir = str(tmp_path / "tfds")
    for split in ("train", "test"):
        x, y = tfds_builder.load_tfds_split(data_dir, str(manual), split)
        x_ref, y_ref = xmc_repo.read_single_file(str(manual / f"{split}.txt"), cache=False)
        _assert_same(x, x_ref)
        _assert_same(y, y_ref)

    builder = tfds_builder.XmcRepo(data_dir=data_dir)
    assert builder.name == "xmc_repo" and builder.is_prepared()
    assert builder.info.metadata["num_features"] == 8 and builder.info.metadata["num_labels"] == 4
    source = builder.as_data_source(split="train")
    assert len(source) == 5
    ex = source[4]
    np.testing.assert_array_equal(ex["feat_idx"], np.array([0, 2, 5], np.int32))
    np.testing.assert_array_equal(ex["feat_val"], np.array([-1, 0.25, 4], np.float32))
    np.testing.assert_array_equal(ex["label_idx"], np.array([1], np.int32))
    assert ex["feat_idx"].dtype == np.int32 and ex["label_idx"].dtype == np.int32


def test_stale_copy_is_regenerated_and_missing_sources_use_the_copy(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    _write(manual / "train.txt", TRAIN)
    _write(manual / "test.txt", TEST)
    data_dir = str(tmp_path / "tfds")
    x, _ = tfds_builder.load_tfds_split(data_dir, str(manual), "test")
    assert x.to_lists() == [[6], [2]]
    path = _write(manual / "test.txt", "2 8 4\n1 5:1\n0,3 2:2\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    x, _ = tfds_builder.load_tfds_split(data_dir, str(manual), "test")
    assert x.to_lists() == [[5], [2]]
    for name in os.listdir(manual):
        os.remove(manual / name)
    x, _ = tfds_builder.load_tfds_split(data_dir, str(manual), "test")
    assert x.to_lists() == [[5], [2]]


def test_split_and_dense_layouts(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("trn", 6), ("tst", 3)):
        x = rng.normal(size=(n, 4)).astype(np.float32)
        x[x < 0] = 0  # a few zeros, which the sparse storage drops and the reader restores
        np.save(manual / f"{prefix}_X.npy", x)
        _write(manual / f"{prefix}_X_Y.txt", f"{n} 3\n" + "".join(f"{i % 3}:1\n" for i in range(n)))
    for split in ("train", "test"):
        x, y = tfds_builder.load_tfds_split(str(tmp_path / "tfds"), str(manual), split)
        x_ref, y_ref = xmc_repo.load_split(str(manual), split, cache=False)
        assert isinstance(x, np.ndarray) and x.dtype == np.float32
        np.testing.assert_array_equal(x, x_ref)
        _assert_same(y, y_ref)

    sparse = tmp_path / "sparse"
    sparse.mkdir()
    _write(sparse / "trn_X_Xf.txt", "2 5\n4:1 0:2\n\n")
    _write(sparse / "trn_X_Y.txt", "2 3\n2:1\n0:1 1:1\n")
    _write(sparse / "tst_X_Xf.txt", "1 5\n3:0.5\n")
    _write(sparse / "tst_X_Y.txt", "1 3\n\n")
    x, y = tfds_builder.load_tfds_split(str(tmp_path / "tfds2"), str(sparse), "train")
    x_ref, y_ref = xmc_repo.read_split_files(str(sparse / "trn_X_Xf.txt"), str(sparse / "trn_X_Y.txt"))
    _assert_same(x, x_ref)
    _assert_same(y, y_ref)


def test_bad_split_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="valid"):
        tfds_builder.load_tfds_split(str(tmp_path / "tfds"), str(tmp_path), "valid")
    with pytest.raises(FileNotFoundError, match="train"):
        tfds_builder.load_tfds_split(str(tmp_path / "tfds"), str(tmp_path), "train")
