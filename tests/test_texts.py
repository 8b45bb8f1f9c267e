"""Raw texts: readers of both layouts, line-count checks, the frozen-embedding cache, token batches."""

import os
import zlib

import numpy as np
import pytest

from configs import xmc
from xcs.data import synthetic, text_inputs, texts
from xcs.data.batching import Batcher, token_batch, token_width
from xcs.data.dataset import load_dataset
from xcs.data.errors import DataFormatError

TRAIN = """3 5 4
0,2 0:0.5 3:0.5
1 1:1.0
3 4:1.0
"""
TEST = """2 5 4
0 0:1.0
1,2 1:0.5 4:0.5
"""
TRAIN_TEXTS = "a red apple\nthe blue sky\n\u2028odd\x0cline\n"  # Unicode/form-feed separators stay inside a text
TEST_TEXTS = "green grass\r\nan apple pie"  # CRLF, no final newline


def fake_embed(texts, text_config, calls=None):
    """A stand-in for the MiniLM encoder: each text's CRC32 seeds a fixed random unit vector."""
    if calls is not None:
        calls.append(list(texts))
    out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def embed_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(text_inputs, "_embed_texts", lambda t, c: fake_embed(t, c, calls))
    return calls


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "train.txt").write_text(TRAIN)
    (d / "test.txt").write_text(TEST)
    (d / "train_texts.txt").write_text(TRAIN_TEXTS, newline="")
    (d / "test_texts.txt").write_text(TEST_TEXTS, newline="")
    monkeypatch.setenv("XCS_DATA_DIR", str(tmp_path))
    return d


def config_for(name, inputs):
    config = xmc.get_config(f"data={name}")
    config.data.text.inputs = inputs
    return config


def test_texts_beside_xc_files_are_read_line_by_line(tiny, embed_calls):
    data = load_dataset(config_for("tiny", "embedding").data, 0)
    assert list(data.train.texts) == ["a red apple", "the blue sky", "\u2028odd\x0cline"]
    assert list(data.test.texts) == ["green grass", "an apple pie"]
    assert data.train.features is None and data.train.dense.shape == (3, 8)
    np.testing.assert_array_equal(data.train.dense, fake_embed(list(data.train.texts), None))
    assert data.num_features == 8


def test_xc_repository_raw_text_names(tiny, embed_calls):
    os.rename(tiny / "train_texts.txt", tiny / "trn_X.txt")
    os.rename(tiny / "test_texts.txt", tiny / "tst_X.txt")
    data = load_dataset(config_for("tiny", "embedding+sparse").data, 0)
    assert data.test.texts[1] == "an apple pie"
    assert data.train.features is not None and data.train.dense.shape == (3, 8)
    assert data.num_features == 5  # the sparse vocabulary (the bag reads it); x's width is inferred


def test_attentionxml_layout(tmp_path, monkeypatch, embed_calls):
    d = tmp_path / "axml"
    d.mkdir()
    (d / "train_texts.txt").write_text("one\ntwo\nthree\n")
    (d / "train_labels.txt").write_text("cat dog\ndog\n\n")
    (d / "test_texts.txt").write_text("four\n")
    (d / "test_labels.txt").write_text("bird cat cat\n")
    monkeypatch.setenv("XCS_DATA_DIR", str(tmp_path))
    data = load_dataset(config_for("axml", "embedding").data, 0)
    assert data.train.labels.to_lists() == [[0, 1], [1], []]
    assert data.test.labels.to_lists() == [[0, 2]]  # bird first appears in test: id 2; repeats merged
    assert data.num_labels == 3 and list(data.test.texts) == ["four"]
    with pytest.raises(ValueError, match="no token occurs in 2 or more training texts"):  # tf-idf of the texts
        load_dataset(config_for("axml", "embedding+sparse").data, 0)


@pytest.mark.parametrize("text, lines", [("x\ny\n", 2), ("x\ny\nz\nw\n", 4)])
def test_a_line_count_other_than_the_point_count_is_refused(tiny, embed_calls, text, lines):
    (tiny / "train_texts.txt").write_text(text)
    with pytest.raises(DataFormatError) as e:
        load_dataset(config_for("tiny", "embedding").data, 0)
    assert "train_texts.txt" in str(e.value) and f"{lines} lines" in str(e.value) and "3 points" in str(e.value)


def test_a_missing_text_file_is_named(tiny, embed_calls):
    os.remove(tiny / "test_texts.txt")
    with pytest.raises(FileNotFoundError, match="test_texts.txt or tst_X.txt"):
        load_dataset(config_for("tiny", "tokens").data, 0)


def test_text_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"fine\nbad \xff byte\n")
    with pytest.raises(DataFormatError, match="t.txt:2: not UTF-8"):
        texts.read_texts(str(path), 2)


def test_mistyped_text_settings_name_the_key(tiny):
    for key, value in (("inputs", "embeddings"), ("pooling", "sum"), ("encoder", "bert")):
        config = config_for("tiny", "embedding")
        config.data.text[key] = value
        with pytest.raises(ValueError, match=f"config.data.text.{key}="):
            load_dataset(config.data, 0)
    for key, value in (("max_len", 1000), ("layers", "3;6"), ("layers", "top"), ("layers", "0,7")):
        config = config_for("tiny", "embedding")
        config.data.text[key] = value
        with pytest.raises(ValueError, match=f"config.data.text.{key}={value!r}"):
            load_dataset(config.data, 0)
    with pytest.raises(ValueError, match="encoder='bert'"):
        xmc.get_config("encoder=bert")


def test_frozen_embeddings_are_cached_and_recomputed_when_the_text_changes(tiny, embed_calls):
    config = config_for("tiny", "embedding")
    first = load_dataset(config.data, 0)
    assert len(embed_calls) == 2  # train and test
    cache = tiny / "train_texts.txt.minilm-mean-L128.xcs-cache.npz"
    assert cache.exists()
    again = load_dataset(config.data, 0)
    assert len(embed_calls) == 2  # both from the cache
    np.testing.assert_array_equal(first.train.dense, again.train.dense)
    os.utime(tiny / "train_texts.txt", ns=(1, 1))  # touched, same bytes: still a hit (content fingerprint)
    load_dataset(config.data, 0)
    assert len(embed_calls) == 2
    (tiny / "train_texts.txt").write_text("a red apple\nthe grey sky\nodd line\n")
    changed = load_dataset(config.data, 0)
    assert len(embed_calls) == 3 and embed_calls[-1][1] == "the grey sky"
    np.testing.assert_array_equal(changed.train.dense[0], first.train.dense[0])
    assert not np.array_equal(changed.train.dense[1], first.train.dense[1])
    config.data.text.max_len = 64  # other settings: another cache file
    load_dataset(config.data, 0)
    assert len(embed_calls) == 5 and (tiny / "test_texts.txt.minilm-mean-L64.xcs-cache.npz").exists()
    config.data.text.layers = "3,6"  # other layers: another cache file
    load_dataset(config.data, 0)
    assert len(embed_calls) == 7 and (tiny / "test_texts.txt.minilm-mean-L64-layers3.6.xcs-cache.npz").exists()


def test_validation_split_takes_texts_and_embeddings_with_their_points(tiny, embed_calls):
    config = config_for("tiny", "embedding")
    full = load_dataset(config.data, 0)
    config.data.validation_fraction = 0.34
    data = load_dataset(config.data, 0)
    for split in (data.train, data.test):
        for text, x in zip(split.texts, split.dense):
            i = list(full.train.texts).index(text)
            np.testing.assert_array_equal(x, full.train.dense[i])


def test_synthetic_texts_are_the_words_of_the_strongest_features():
    spec = synthetic.SyntheticSpec(num_train=50, num_test=10, num_features=3000, num_labels=100, num_clusters=10)
    features, _ = synthetic.generate_split(spec, "train")
    out = synthetic.generate_texts(spec, features)
    words = synthetic.feature_words(spec)
    assert len(set(words)) == spec.num_features
    for i in range(features.num_rows):
        idx, val = features.row(i)
        expected = [words[j] for j in idx[np.argsort(-val, kind="stable")][:synthetic.WORDS_PER_TEXT]]
        assert out[i].split() == expected
    np.testing.assert_array_equal(out, synthetic.generate_texts(spec, features))


def test_token_width_is_the_least_bucket_that_fits():
    assert [token_width(128, n, 3) for n in (1, 20, 32, 33, 64, 65, 128)] == [32, 32, 32, 64, 64, 128, 128]
    assert token_width(128, 5, 1) == 128
    assert token_width(16, 3, 4) == 8  # never narrower than 8


def test_token_batches_carry_ids_and_mask_of_their_rows():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 40, size=30).astype(np.int32)
    ids = np.zeros((30, 64), np.int32)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(1, 1000, size=n)
    tokens = texts.Tokens(ids, lengths)
    rows = np.array([3, 7, 7, 29])
    got_ids, got_mask = token_batch(tokens, rows, buckets=3)
    width = token_width(64, int(lengths[rows].max()), 3)
    assert got_ids.shape == got_mask.shape == (4, width) and got_mask.dtype == np.int32
    for r, row in enumerate(rows):
        assert got_mask[r].sum() == lengths[row] and got_mask[r, :lengths[row]].all()
        np.testing.assert_array_equal(got_ids[r, :lengths[row]], ids[row, :lengths[row]])
        assert not got_ids[r, lengths[row]:].any()


def test_batcher_puts_x_beside_the_sparse_features(tiny, embed_calls):
    data = load_dataset(config_for("tiny", "embedding+sparse").data, 0)
    batch = Batcher(data.train, 0, 0)(np.array([2, 0]))
    assert set(batch) == {"x", "feat_idx", "feat_val", "label_idx", "label_mask"}
    np.testing.assert_array_equal(batch["x"], data.train.dense[[2, 0]])
    assert batch["feat_idx"][0, 0] == 4


def test_tfds_source_carries_the_text_field(tiny, embed_calls):
    from xcs.data import tfds_builder

    config = config_for("tiny", "embedding+sparse")
    config.data.source = "tfds"
    data = load_dataset(config.data, 0)
    assert list(data.train.texts) == ["a red apple", "the blue sky", "\u2028odd\x0cline"]
    assert list(data.test.texts) == ["green grass", "an apple pie"]
    assert data.train.features.to_lists() == [[0, 3], [1], [4]] and data.train.dense.shape == (3, 8)
    assert (tiny / "train_texts.txt.minilm-mean-L128.xcs-cache.npz").exists()
    (tiny / "test_texts.txt").write_text("one line only\n")  # a changed text file regenerates, and is checked
    with pytest.raises(DataFormatError, match="test_texts.txt.*1 lines.*2 points"):
        load_dataset(config.data, 0)
    os.remove(tiny / "test_texts.txt")
    os.remove(tiny / "train_texts.txt")  # no texts: the prepared copy has none either
    assert tfds_builder.load_tfds_texts(str(tiny / "tfds2"), str(tiny), "train") is None
    with pytest.raises(FileNotFoundError, match="train_texts.txt or trn_X.txt"):
        load_dataset(config.data, 0)
