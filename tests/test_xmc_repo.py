"""Tests for the Extreme Classification Repository readers (xcs/data/xmc_repo.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xcs.data import npz_cache, xc_parse, xmc_repo
from xcs.data.errors import DataFormatError
from xcs.data.sparse import CSR


def _write(path, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def _assert_csr(csr: CSR, rows: list[list[int]], num_cols: int, values: list[list[float]] | None = None):
    assert csr.num_cols == num_cols
    assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int32 and csr.values.dtype == np.float32
    assert csr.to_lists() == rows
    if values is None:
        values = [[1.0] * len(r) for r in rows]
    expected = np.array([v for r in values for v in r], np.float32)
    np.testing.assert_array_equal(csr.values, expected)


SINGLE = (
    "6 10 5\n"
    "0,3 1:0.5 4:1.5\n"        # labels and features
    " 2:2.0\n"                  # no labels: leading space
    "7:1e-3 3:-2\n"             # no labels: starts with a feature; unsorted features
    "4,1,4\n"                   # labels only, unsorted with a repeat
    "\n"                        # nothing at all
    "2\t9:3.25\t0:+1\n"         # tabs
)


@pytest.mark.parametrize("cache", [False, True])
def test_single_file_round_trip(tmp_path, cache):
    path = _write(tmp_path / "train.txt", SINGLE)
    x, y = xmc_repo.read_single_file(path, cache=cache)
    _assert_csr(x, [[1, 4], [2], [3, 7], [], [], [0, 9]], 10,
                [[0.5, 1.5], [2.0], [-2.0, 1e-3], [], [], [1.0, 3.25]])
    _assert_csr(y, [[0, 3], [], [], [1, 4], [], [2]], 5)
    assert os.path.exists(path + ".single.xcs-cache.npz") == cache


def test_single_file_windows_line_ends_and_no_final_newline(tmp_path):
    path = _write(tmp_path / "a.txt", "2 3 2\r\n1 0:1\r\n0 2:2")
    x, y = xmc_repo.read_single_file(path, cache=False)
    _assert_csr(x, [[0], [2]], 3, [[1.0], [2.0]])
    _assert_csr(y, [[1], [0]], 2)


def test_trailing_blank_lines_are_ignored(tmp_path):
    path = _write(tmp_path / "a.txt", "1 3 2\n1 0:1\n\n  \n")
    x, y = xmc_repo.read_single_file(path, cache=False)
    assert x.num_rows == 1 and y.to_lists() == [[1]]


def _random_single_file(rng, n, num_features, num_labels):
    """Text of a random single-format file, and the rows it must parse to."""
    lines, feats, vals, labels = [], [], [], []
    for _ in range(n):
        k = int(rng.integers(0, 5))
        labs = rng.integers(0, num_labels, size=int(rng.integers(0, 4))).tolist()
        ids = rng.choice(num_features, size=k, replace=False).tolist()
        vs = [float(np.float32(v)) for v in rng.normal(size=k)]
        pairs = " ".join(f"{i}:{v!r}" for i, v in zip(ids, vs))
        sep = rng.choice([" ", "  ", "\t"])
        lines.append(",".join(map(str, labs)) + (sep + pairs if pairs else "") if labs else sep + pairs)
        order = np.argsort(ids, kind="stable")
        feats.append([ids[o] for o in order])
        vals.append([vs[o] for o in order])
        labels.append(sorted(set(labs)))
    text = f"{n} {num_features} {num_labels}\n" + "\n".join(lines) + "\n"
    return text, feats, vals, labels


def test_vectorised_and_line_by_line_paths_agree(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    text, feats, vals, labels = _random_single_file(rng, 300, 50, 20)
    path = _write(tmp_path / "r.txt", text)
    monkeypatch.setattr(xc_parse, "_CHUNK_BYTES", 97)  # many chunks, cut at odd places
    x, y = xmc_repo.read_single_file(path, cache=False)
    _assert_csr(x, feats, 50, vals)
    _assert_csr(y, labels, 20)
    # The line-by-line parser alone (what runs when a chunk looks malformed) gives the same.
    monkeypatch.setattr(xc_parse, "_fast_chunk", lambda *a, **k: None)
    x2, y2 = xmc_repo.read_single_file(path, cache=False)
    for a, b in ((x, x2), (y, y2)):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.values, b.values)


def test_split_files_round_trip(tmp_path):
    xf = _write(tmp_path / "trn_X_Xf.txt", "3 6\n0:1 5:0.25\n\n3:2 1:4\n")
    xy = _write(tmp_path / "trn_X_Y.txt", "3 4\n2:1\n0:1 3:1\n1:1 1:1\n")  # a repeated label
    x = xmc_repo.read_sparse_matrix(xf, cache=False)
    _assert_csr(x, [[0, 5], [], [1, 3]], 6, [[1.0, 0.25], [], [4.0, 2.0]])
    x, y = xmc_repo.read_split_files(xf, xy)
    _assert_csr(x, [[0, 5], [], [1, 3]], 6, [[1.0, 0.25], [], [4.0, 2.0]])
    _assert_csr(y, [[2], [0, 3], [1]], 4)


def test_split_files_label_values_are_ignored(tmp_path):
    xf = _write(tmp_path / "f.txt", "1 3\n0:1\n")
    xy = _write(tmp_path / "y.txt", "1 3\n2:0.5\n")
    _, y = xmc_repo.read_split_files(xf, xy, cache=False)
    _assert_csr(y, [[2]], 3)


def test_split_files_row_counts_must_agree(tmp_path):
    xf = _write(tmp_path / "tst_X_Xf.txt", "2 3\n0:1\n1:1\n")
    xy = _write(tmp_path / "tst_X_Y.txt", "1 3\n0:1\n")
    with pytest.raises(DataFormatError, match="tst_X_Y.txt.*tst_X_Xf.txt"):
        xmc_repo.read_split_files(xf, xy, cache=False)


def test_dense_round_trip(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "trn_X.npy", x)
    y = _write(tmp_path / "trn_X_Y.txt", "3 2\n0:1\n\n1:1 0:1\n")
    features, labels = xmc_repo.read_dense(str(tmp_path / "trn_X.npy"), y, cache=False)
    assert isinstance(features, np.memmap) and features.dtype == np.float32
    np.testing.assert_array_equal(features, x)
    _assert_csr(labels, [[0], [], [0, 1]], 2)
    np.save(tmp_path / "f64.npy", x.astype(np.float64))  # other dtypes are converted
    features, _ = xmc_repo.read_dense(str(tmp_path / "f64.npy"), y, cache=False)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, x)


def test_dense_errors(tmp_path):
    x = np.ones((3, 4), np.float32)
    x[2, 1] = np.nan
    np.save(tmp_path / "bad.npy", x)
    y = _write(tmp_path / "y.txt", "3 2\n0:1\n\n1:1\n")
    with pytest.raises(DataFormatError, match=r"bad\.npy.*row 2, column 1.*nan"):
        xmc_repo.read_dense(str(tmp_path / "bad.npy"), y, cache=False)
    np.save(tmp_path / "short.npy", np.ones((2, 4), np.float32))
    with pytest.raises(DataFormatError, match=r"y\.txt.*short\.npy"):
        xmc_repo.read_dense(str(tmp_path / "short.npy"), y, cache=False)
    np.save(tmp_path / "flat.npy", np.ones(3, np.float32))
    with pytest.raises(DataFormatError, match=r"flat\.npy.*2-d"):
        xmc_repo.read_dense(str(tmp_path / "flat.npy"), y, cache=False)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        xmc_repo.read_dense(str(tmp_path / "missing.npy"), y, cache=False)


# (file content, 1-based line, offending token) for the single-file format.
SINGLE_ERRORS = [
    ("2 5 3\n0 1:1\n1 2\n", 3, "2", "id:value"),                      # token without ':'
    ("2 5 3\n0 1:1\n1 2:3:4\n", 3, "2:3:4", "id:value"),              # two colons
    ("2 5 3\n0 1:1\n1 :4\n", 3, ":4", "id:value"),                    # no id
    ("2 5 3\n0 1:1\n1 4:\n", 3, "4:", "id:value"),                    # no value
    ("2 5 3\n0 x:1\n1 2:1\n", 2, "x:1", "not a non-negative integer"),  # non-numeric id
    ("2 5 3\n0 1.0:1\n1 2:1\n", 2, "1.0:1", "not a non-negative integer"),
    ("2 5 3\n0 1:abc\n1 2:1\n", 2, "1:abc", "not a number"),          # non-numeric value
    ("2 5 3\n0 -1:1\n1 2:1\n", 2, "-1:1", "negative"),                # negative feature id
    ("2 5 3\n0 5:1\n1 2:1\n", 2, "5:1", "out of range"),              # feature id >= F
    ("2 5 3\n0 1:nan\n1 2:1\n", 2, "1:nan", "not finite"),            # NaN value
    ("2 5 3\n0 1:1\n1 2:-inf\n", 3, "2:-inf", "not finite"),          # inf value
    ("2 5 3\n0 1:1\n1 2:1e39\n", 3, "2:1e39", "not finite"),          # overflows float32
    ("2 5 3\n0 1:1 1:2\n1 2:1\n", 2, "1:2", "twice"),                 # repeated feature id
    ("2 5 3\n0,a 1:1\n1 2:1\n", 2, "a", "not a non-negative integer"),  # non-numeric label
    ("2 5 3\n0,-1 1:1\n1 2:1\n", 2, "-1", "negative"),                # negative label
    ("2 5 3\n0 1:1\n3 2:1\n", 3, "3", "out of range"),                # label id >= L
    ("2 5 3\n0,,1 1:1\n1 2:1\n", 2, "0,,1", "empty label"),           # empty label id
    ("2 5 3\n0 1:1\n", 1, "2", "only 1"),                             # too few lines
    ("2 5 3\n0 1:1\n1 2:1\n2 3:1\n", 4, "2", "more lines"),           # too many lines
    ("2 5\n0 1:1\n1 2:1\n", 1, "2 5", "3 integers"),                  # header: wrong count
    ("2 5 x\n0 1:1\n1 2:1\n", 1, "x", "num_labels"),                  # header: not integers
    ("2 -5 3\n0 1:1\n1 2:1\n", 1, "-5", "num_features"),
]


@pytest.mark.parametrize("content,line,token,reason", SINGLE_ERRORS)
def test_single_file_errors_name_file_line_and_token(tmp_path, content, line, token, reason):
    path = _write(tmp_path / "bad_single.txt", content)
    with pytest.raises(DataFormatError) as info:
        xmc_repo.read_single_file(path, cache=False)
    err = info.value
    assert (err.path, err.line, err.token) == (path, line, token)
    message = str(err)
    assert f"bad_single.txt:{line}" in message and repr(token) in message and reason in message


SPLIT_ERRORS = [
    ("2 4\n0:1\n1\n", 3, "1", "id:value"),
    ("2 4\n0:1\n4:1\n", 3, "4:1", "out of range"),
    ("2 4\n0:1\n-2:1\n", 3, "-2:1", "negative"),
    ("2 4\n0:1 2:x\n\n", 2, "2:x", "not a number"),
    ("2 4\n0:inf\n\n", 2, "0:inf", "not finite"),
    ("2 4\n0:1\n", 1, "2", "only 1"),
    ("1 4\n0:1\n2:1\n", 3, "2:1", "more lines"),
    ("1 4\n0:1\n\n \n2:1\n", 5, "2:1", "more lines"),             # after blank lines
    ("1 4 5\n0:1\n", 1, "1 4 5", "2 integers"),
    ("1 4.5\n0:1\n", 1, "4.5", "cols"),
]


@pytest.mark.parametrize("content,line,token,reason", SPLIT_ERRORS)
def test_split_file_errors_name_file_line_and_token(tmp_path, content, line, token, reason):
    path = _write(tmp_path / "bad_X_Xf.txt", content)
    with pytest.raises(DataFormatError) as info:
        xmc_repo.read_sparse_matrix(path, cache=False)
    err = info.value
    assert (err.path, err.line, err.token) == (path, line, token)
    assert f"bad_X_Xf.txt:{line}" in str(err) and repr(token) in str(err) and reason in str(err)


def test_repeated_column_is_an_error_in_features_but_merged_in_labels(tmp_path):
    path = _write(tmp_path / "m.txt", "1 4\n1:1 1:1\n")
    with pytest.raises(DataFormatError, match=r"m\.txt:2.*twice"):
        xmc_repo.read_sparse_matrix(path, cache=False)
    _, y = xmc_repo.read_split_files(_write(tmp_path / "f.txt", "1 2\n\n"), path, cache=False)
    assert y.to_lists() == [[1]]


def test_error_line_numbers_are_right_across_chunks(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    text, *_ = _random_single_file(rng, 200, 50, 20)
    lines = text.split("\n")
    lines[150] = "1 3:1 77:0.5"  # line 151 of the file: feature 77 >= 50
    path = _write(tmp_path / "r.txt", "\n".join(lines))
    monkeypatch.setattr(xc_parse, "_CHUNK_BYTES", 200)
    with pytest.raises(DataFormatError) as info:
        xmc_repo.read_single_file(path, cache=False)
    assert (info.value.line, info.value.token) == (151, "77:0.5")


def test_empty_and_missing_files(tmp_path):
    path = _write(tmp_path / "empty.txt", "")
    with pytest.raises(DataFormatError, match=r"empty\.txt:1: empty file"):
        xmc_repo.read_single_file(path, cache=False)
    with pytest.raises(DataFormatError, match=r"blank\.txt:1: empty file"):
        xmc_repo.read_sparse_matrix(_write(tmp_path / "blank.txt", "\n \n"), cache=False)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        xmc_repo.read_single_file(str(tmp_path / "nope.txt"))


def test_zero_rows(tmp_path):
    x, y = xmc_repo.read_single_file(_write(tmp_path / "z.txt", "0 4 3\n"), cache=False)
    assert x.num_rows == 0 and y.num_rows == 0 and x.num_cols == 4 and y.num_cols == 3


# ----------------------------------------------------------------------------------------------
# Cache


def test_cache_is_used_on_the_second_load(tmp_path, monkeypatch):
    path = _write(tmp_path / "train.txt", SINGLE)
    x1, y1 = xmc_repo.read_single_file(path)
    assert os.path.exists(path + ".single.xcs-cache.npz")
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]

    def fail(*args, **kwargs):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(xmc_repo, "parse_body", fail)
    x2, y2 = xmc_repo.read_single_file(path)
    for a, b in ((x1, x2), (y1, y2)):
        assert a.num_cols == b.num_cols and a.to_lists() == b.to_lists()
        np.testing.assert_array_equal(a.values, b.values)
        assert a.indptr.dtype == b.indptr.dtype and a.indices.dtype == b.indices.dtype


def test_cache_is_rebuilt_when_the_source_changes(tmp_path):
    path = _write(tmp_path / "trn_X_Xf.txt", "1 4\n0:1\n")
    assert xmc_repo.read_sparse_matrix(path).to_lists() == [[0]]
    stat = os.stat(path)
    _write(path, "1 4\n2:1\n")  # same size: only the mtime tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert xmc_repo.read_sparse_matrix(path).to_lists() == [[2]]
    _write(path, "1 4\n3:1 1:5\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime as before: size tells
    assert xmc_repo.read_sparse_matrix(path).to_lists() == [[1, 3]]


def test_bad_source_does_not_reuse_the_old_cache(tmp_path):
    path = _write(tmp_path / "a.txt", "1 4 2\n0 0:1\n")
    xmc_repo.read_single_file(path)
    _write(path, "1 4 2\n0 9:1\n")
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 1_000_000_000))
    with pytest.raises(DataFormatError, match="out of range"):
        xmc_repo.read_single_file(path)


def test_corrupt_cache_is_rebuilt(tmp_path):
    path = _write(tmp_path / "a.txt", "1 4 2\n1 3:1\n")
    xmc_repo.read_single_file(path)
    _write(path + ".single.xcs-cache.npz", "garbage")
    x, y = xmc_repo.read_single_file(path)
    assert x.to_lists() == [[3]] and y.to_lists() == [[1]]
    x, y = xmc_repo.read_single_file(path)  # and the rebuilt cache is good
    assert x.to_lists() == [[3]]


def test_unwritable_directory_skips_the_cache(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.txt", "1 4 2\n1 3:1\n")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(npz_cache.tempfile, "mkstemp", read_only)
    x, _ = xmc_repo.read_single_file(path)
    assert x.to_lists() == [[3]]
    assert os.listdir(tmp_path) == ["a.txt"]


def test_failed_cache_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.txt", "1 4 2\n1 3:1\n")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(npz_cache.os, "replace", full_disk)
    x, _ = xmc_repo.read_single_file(path)
    assert x.to_lists() == [[3]]
    assert os.listdir(tmp_path) == ["a.txt"]


# ----------------------------------------------------------------------------------------------
# Finding the files of a split


def test_find_split_files_each_format(tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    _write(single / "train.txt", SINGLE)
    assert xmc_repo.find_split_files(str(single), "train") == {
        "format": "single", "paths": [str(single / "train.txt")]}

    split = tmp_path / "split"
    split.mkdir()
    for name in ("tst_X_Xf.txt", "tst_X_Y.txt", "train_X_Xf.txt", "train_X_Y.txt"):
        _write(split / name, "1 3\n0:1\n")
    assert xmc_repo.find_split_files(str(split), "test") == {
        "format": "split", "paths": [str(split / "tst_X_Xf.txt"), str(split / "tst_X_Y.txt")]}
    assert xmc_repo.find_split_files(str(split), "train")["paths"][0] == str(split / "train_X_Xf.txt")

    dense = tmp_path / "dense"
    dense.mkdir()
    np.save(dense / "trn_X.npy", np.ones((1, 2), np.float32))
    _write(dense / "trn_X_Y.txt", "1 3\n0:1\n")
    np.save(dense / "test_X.npy", np.ones((1, 2), np.float32))
    _write(dense / "test_Y.txt", "1 3\n0:1\n")
    assert xmc_repo.find_split_files(str(dense), "train") == {
        "format": "dense", "paths": [str(dense / "trn_X.npy"), str(dense / "trn_X_Y.txt")]}
    assert xmc_repo.find_split_files(str(dense), "test")["paths"] == [
        str(dense / "test_X.npy"), str(dense / "test_Y.txt")]

    repo = tmp_path / "eurlex"
    repo.mkdir()
    _write(repo / "eurlex_test.txt", SINGLE)
    assert xmc_repo.find_split_files(str(repo), "test")["paths"] == [str(repo / "eurlex_test.txt")]


def test_find_split_files_prefers_single_unless_told(tmp_path):
    _write(tmp_path / "train.txt", SINGLE)
    np.save(tmp_path / "trn_X.npy", np.ones((1, 2), np.float32))
    _write(tmp_path / "trn_X_Y.txt", "1 3\n0:1\n")
    assert xmc_repo.find_split_files(str(tmp_path), "train")["format"] == "single"
    assert xmc_repo.find_split_files(str(tmp_path), "train", format="dense")["format"] == "dense"


def test_find_split_files_not_found_names_what_it_looked_for(tmp_path):
    _write(tmp_path / "trn_X_Xf.txt", "1 3\n0:1\n")
    with pytest.raises(FileNotFoundError) as info:
        xmc_repo.find_split_files(str(tmp_path), "train")
    message = str(info.value)
    assert str(tmp_path) in message
    for name in ("train.txt", "trn_X_Xf.txt + trn_X_Y.txt", "trn_X.npy", "*_train.txt"):
        assert name in message
    assert "found trn_X_Xf.txt but not trn_X_Y.txt" in message
    with pytest.raises(FileNotFoundError, match="not_there"):
        xmc_repo.find_split_files(str(tmp_path / "not_there"), "train")


def test_load_split_dispatches(tmp_path):
    _write(tmp_path / "train.txt", SINGLE)
    _write(tmp_path / "tst_X_Xf.txt", "2 10\n1:1\n\n")
    _write(tmp_path / "tst_X_Y.txt", "2 5\n0:1\n4:1\n")
    x, y = xmc_repo.load_split(str(tmp_path), "train", cache=False)
    assert x.num_rows == 6 and y.num_cols == 5
    x, y = xmc_repo.load_split(str(tmp_path), "test")
    assert x.to_lists() == [[1], []] and y.to_lists() == [[0], [4]]
    np.save(tmp_path / "tst_X.npy", np.zeros((2, 3), np.float32))
    x, y = xmc_repo.load_split(str(tmp_path), "test", format="dense")
    assert x.shape == (2, 3) and y.to_lists() == [[0], [4]]
