"""Data sets whose files disagree are refused at load, naming file and line (issue 27); the cache follows content."""

import os

import pytest

from configs import xmc
from xcs.data import xmc_repo
from xcs.data.errors import DataFormatError
from xcs.train import loop

TRAIN = "4 5 3\n0 0:1 1:0.5\n1,2 2:1\n0 3:1 4:2\n2 1:1\n"
TEST = "2 5 3\n1 0:1\n0,2 4:1\n"


def write(directory, **files):
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.txt").write_text(text)
    return str(directory)


def test_good_files_load(tmp_path):
    (train_x, train_y), (test_x, test_y) = xmc_repo.load_splits(write(tmp_path / "d", train=TRAIN, test=TEST),
                                                                cache=False)
    assert (train_x.num_rows, test_x.num_rows, train_y.num_cols, test_y.num_cols) == (4, 2, 3, 3)


@pytest.mark.parametrize("test, message", [
    ("2 5 4\n1 0:1\n0,2 4:1\n", r"test.txt:1: declares 4 labels but .*train.txt declares 3"),
    ("2 6 3\n1 0:1\n0,2 4:1\n", r"test.txt:1: declares 6 features but .*train.txt declares 5"),
    ("0 5 3\n", r"test.txt:1: header declares 0 rows"),
    ("2 5 3\n1 0:1\n\n0,2 4:1\n", r"test.txt:3: blank line inside the data"),
    ("3 5 3\n1 0:1\n0,2 4:1\n", r"test.txt:1: header declares 3 rows but the file has only 2"),
])
def test_files_of_one_data_set_that_disagree_are_refused_naming_file_and_line(tmp_path, test, message):
    with pytest.raises(DataFormatError, match=message):
        xmc_repo.load_splits(write(tmp_path / "d", train=TRAIN, test=test), cache=False)


def test_a_data_error_writes_nothing(tmp_path):
    config = xmc.get_config("smoke")
    config.data.source, config.data.dir = "xmc_repo", write(tmp_path / "d", train=TRAIN, test="2 5 9\n1 0:1\n2 4:1\n")
    with pytest.raises(DataFormatError, match="declares 9 labels"):
        loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_cache_follows_the_content_not_size_and_mtime(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TRAIN)
    first = xmc_repo.read_single_file(str(path))[1]
    assert os.path.exists(f"{path}.single.xcs-cache.npz")
    st = os.stat(path)
    path.write_text(TRAIN.replace("1,2 2:1", "0,2 2:1"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime (as cp -p or touch -r leave it)
    second = xmc_repo.read_single_file(str(path))[1]
    assert list(first.indices[first.indptr[1]:first.indptr[2]]) == [1, 2]
    assert list(second.indices[second.indptr[1]:second.indptr[2]]) == [0, 2]
