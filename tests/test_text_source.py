"""Text in, labels out: xcs.data.tfidf against a numpy computation from the definition, and a texts +
label-names directory loaded, featurised and trained end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import default
from tests.conftest import ROOT
from xcs.core.errors import UserError
from xcs.data import build, text_source
from xcs.data.dataset import load_dataset, validation_rows
from xcs.data.errors import DataFormatError
from xcs.data.tfidf import TfidfVectorizer

WORDS = ["Apple", "pie", "sky", "blue", "a", "x1", "grass", "green", "ÄPFEL", "rain", "2024", "of", "the", "東京",
         "snake_case", "Straße", "é"]


def random_texts(rng, n):
    return [" ".join(rng.choice(WORDS, size=rng.integers(0, 9))) + rng.choice(["", ".", ", and-", "!?"])
            for _ in range(n)]


def tfidf_by_definition(fit_texts, texts, min_df, max_features):
    """Dense [len(texts), F] float64 from the definition: lower-case runs of letters and digits (isalnum) of >= 2
    characters,
    vocabulary by train df (>= min_df, the max_features most frequent, ties by token), idf = ln((1+N)/(1+df))+1,
    tf = 1 + ln(count), rows L2-normalised."""
    def tokens(t):
        words = "".join(c if c.isalnum() else " " for c in t.lower()).split()
        return [w for w in words if len(w) >= 2]

    fit_tokens = [tokens(t) for t in fit_texts]
    vocab = sorted({w for ts in fit_tokens for w in ts})
    df = np.array([sum(w in ts for ts in fit_tokens) for w in vocab])
    order = sorted((i for i in range(len(vocab)) if df[i] >= min_df), key=lambda i: (-df[i], vocab[i]))
    order = order[:max_features] if max_features else order
    vocab, df = [vocab[i] for i in order], df[order]
    idf = np.log((1 + len(fit_texts)) / (1 + df)) + 1
    counts = np.array([[tokens(t).count(w) for w in vocab] for t in texts], np.float64).reshape(len(texts), -1)
    x = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return vocab, x / np.where(norms > 0, norms, 1)


def dense(csr):
    out = np.zeros((csr.num_rows, csr.num_cols))
    for i in range(csr.num_rows):
        idx, val = csr.row(i)
        out[i, idx] = val
    return out


@pytest.mark.parametrize("min_df, max_features", [(1, 0), (2, 0), (2, 4)])
def test_vectorizer_matches_the_definition(tmp_path, min_df, max_features):
    rng = np.random.default_rng(min_df + max_features)
    fit_texts, new_texts = random_texts(rng, 40), random_texts(rng, 10) + ["", "unseen words only", "APPLE apple"]
    vec = TfidfVectorizer.fit(fit_texts, min_df, max_features)
    vocab, want = tfidf_by_definition(fit_texts, new_texts, min_df, max_features)
    assert list(vec.vocabulary) == vocab and vec.num_features == len(vocab) > 0
    got = vec.transform(new_texts)
    assert got.values.dtype == np.float32 and got.num_cols == len(vocab)
    assert all(np.all(np.diff(got.row(i)[0]) > 0) for i in range(got.num_rows))  # ids ascending within a row
    np.testing.assert_allclose(dense(got), want, rtol=1e-6, atol=1e-7)
    assert got.row(len(new_texts) - 2)[0].size == 0  # no known token: an empty row
    vec.save(tmp_path / "v.json")
    again = TfidfVectorizer.load(tmp_path / "v.json")
    assert again == vec and again.idf == vec.idf  # floats exact through JSON
    np.testing.assert_array_equal(again.transform(new_texts).values, got.values)


def test_a_file_that_is_not_a_vectorizer_is_refused(tmp_path):
    (tmp_path / "v.json").write_text('{"format": "other"}')
    with pytest.raises(DataFormatError, match="v.json: not an xcs-tfidf file"):
        TfidfVectorizer.load(tmp_path / "v.json")


# ---------------------------------------------------------------------------------------------
# A texts + label names directory

TRAIN = [("red apple pie", "fruit food"), ("green apple", "fruit"), ("blue sky rain", "weather"),
         ("apple pie recipe", "food"), ("rain and sky", "weather sky"), ("green grass", "plant")]
TEST = [("apple rain", "fruit weather"), ("a red sky", "sky new_label")]


def write_dir(d, train=TRAIN, test=TEST, sep=" "):
    d.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        if rows is None:
            continue
        (d / f"{split}_texts.txt").write_text("".join(t + "\n" for t, _ in rows))
        (d / f"{split}_labels.txt").write_text("".join(sep.join(n.split()) + "\n" for _, n in rows))
    return d


def data_config(d, **kw):
    config = default.get_config().data
    config.source, config.dir = "xmc_repo", str(d)
    for k, v in kw.items():
        if k.startswith("text_"):
            config.text[k[5:]] = v
        else:
            config[k] = v
    return config


def test_texts_and_label_names_load_with_their_own_tfidf(tmp_path):
    data = load_dataset(data_config(write_dir(tmp_path / "d"), text_tfidf_min_df=1), 0)
    assert data.label_names == ("fruit", "food", "weather", "sky", "plant", "new_label")  # first appearance
    assert data.train.labels.to_lists() == [[0, 1], [0], [2], [1], [2, 3], [4]]
    assert data.test.labels.to_lists() == [[0, 2], [3, 5]] and data.num_labels == 6
    want = TfidfVectorizer.fit([t for t, _ in TRAIN], min_df=1, max_features=100000)
    assert data.vectorizer == want and data.num_features == want.num_features
    np.testing.assert_array_equal(data.test.features.values, want.transform([t for t, _ in TEST]).values)
    assert "recipe" in data.vectorizer.vocabulary and "new" not in data.vectorizer.vocabulary  # train only
    # A delimiter lets names hold spaces.
    rows = [(t, n.replace(" ", ",") + ", two words") for t, n in TRAIN]
    data = load_dataset(data_config(write_dir(tmp_path / "c", rows, None), text_label_delimiter=",",
                                     validation_fraction=0.5), 0)
    assert data.label_names[:2] == ("fruit", "food") and "two words" in data.label_names


def test_held_out_split_fits_on_the_kept_rows_only(tmp_path):
    d = write_dir(tmp_path / "d", test=None)
    with pytest.raises(UserError, match="no test_texts.txt \\+ test_labels.txt.*validation_fraction"):
        load_dataset(data_config(d), 0)
    data = load_dataset(data_config(d, validation_fraction=0.34, text_tfidf_min_df=1), 3)
    kept, held = validation_rows(len(TRAIN), 0.34, 3)
    assert data.train.num_points == len(kept) and data.test.num_points == len(held) == 2
    assert data.vectorizer == TfidfVectorizer.fit([TRAIN[i][0] for i in kept], min_df=1, max_features=100000)
    assert list(data.test.texts) == [TRAIN[i][0] for i in held]


def test_bad_texts_and_label_names_directories(tmp_path):
    d = write_dir(tmp_path / "d")
    for key, value in (("tfidf_min_df", 0), ("tfidf_max_features", -1)):
        with pytest.raises(UserError, match=f"config.data.text.{key}={value}: must be"):
            load_dataset(data_config(d, **{f"text_{key}": value}), 0)
    with pytest.raises(UserError, match="no token occurs in 9 or more training texts"):
        load_dataset(data_config(d, text_tfidf_min_df=9), 0)
    with open(d / "test_labels.txt", "a") as f:
        f.write("extra\n")
    with pytest.raises(DataFormatError, match="test_labels.txt: 3 lines .* test_texts.txt has 2"):
        load_dataset(data_config(d), 0)
    os.remove(d / "test_labels.txt")
    with pytest.raises(UserError, match="test_texts.txt without test_labels.txt"):
        load_dataset(data_config(d), 0)


def test_labels_txt_names_xc_labels_and_artifacts_round_trip(tmp_path):
    d = tmp_path / "xc"
    d.mkdir()
    (d / "train.txt").write_text("2 3 2\n0 0:1\n1 2:1\n")
    (d / "test.txt").write_text("1 3 2\n0,1 1:1\n")
    assert load_dataset(data_config(d), 0).label_names is None
    (d / "labels.txt").write_text("cat\ndog\n")
    data = load_dataset(data_config(d), 0)
    assert data.label_names == ("cat", "dog") and data.vectorizer is None
    (d / "labels.txt").write_text("cat\n")
    with pytest.raises(DataFormatError, match="labels.txt: 1 label names but the data set has 2 labels"):
        load_dataset(data_config(d), 0)
    (d / "labels.txt").write_text("cat\ncat\n")  # refused when read, before training (not when the run saves it)
    with pytest.raises(DataFormatError, match="labels.txt:2: this label name is also on line 1.*'cat'"):
        load_dataset(data_config(d), 0)
    data = load_dataset(data_config(write_dir(tmp_path / "t"), text_tfidf_min_df=1), 0)
    out = tmp_path / "w"
    out.mkdir()
    assert text_source.save_artifacts(data, str(out)) == [str(out / "label_names.txt"), str(out / "tfidf.json")]
    names, vec = text_source.load_artifacts(str(out))
    assert names == data.label_names and vec == data.vectorizer
    assert text_source.load_artifacts(str(tmp_path)) == (None, None)


def test_wordnet_texts_format_gives_the_features_of_its_xc_format(tmp_path):
    """The builder's two formats of one set: xcs's own tf-idf of the texts = the builder's train.txt features."""
    from tests.test_build import LICENCE, NOUNS, VERBS

    wn = tmp_path / "wn"
    wn.mkdir()
    (wn / "data.noun").write_text(LICENCE + "\n".join(NOUNS) + "\n")
    (wn / "data.verb").write_text(LICENCE + "\n".join(VERBS) + "\n")
    for fmt in ("xc", "texts"):
        assert build.main(["wordnet_closure", f"--wordnet-dir={wn}", f"--out={tmp_path / fmt}", f"--format={fmt}",
                           "--test-frac=0.5", "--split=random", "--min-df=1"]) == 0
    xc, tx = (load_dataset(data_config(tmp_path / fmt, text_tfidf_min_df=1), 0) for fmt in ("xc", "texts"))
    assert xc.train.num_points + xc.test.num_points == 6 and xc.test.num_points > 0
    for a, b in ((xc.train, tx.train), (xc.test, tx.test)):
        np.testing.assert_array_equal(a.features.indptr, b.features.indptr)
        np.testing.assert_array_equal(a.features.indices, b.features.indices)
        np.testing.assert_allclose(a.features.values, b.features.values, rtol=1e-5)  # %.6g in train.txt
        as_names = [sorted(xc.label_names[j] for j in row) for row in a.labels.to_lists()]
        assert as_names == [sorted(tx.label_names[j] for j in row) for row in b.labels.to_lists()]
    assert tx.vectorizer.vocabulary == tuple((tmp_path / "xc" / "vocab.txt").read_text().split())


def test_texts_and_label_names_train_end_to_end(tmp_path):
    """launch.py on a texts + label-names directory: no feature file, the smoke config, results written."""
    rng = np.random.default_rng(0)
    topics = {f"topic{k}": [f"w{k}x{j}" for j in range(6)] for k in range(8)}
    names = list(topics)

    def rows(n):
        out = []
        for _ in range(n):
            labels = list(rng.choice(names, size=rng.integers(1, 3), replace=False))
            words = [w for lab in labels for w in rng.choice(topics[lab], size=3)] + ["common", "words"]
            out.append((" ".join(rng.permutation(words)).upper(), " ".join(labels)))
        return out

    write_dir(tmp_path / "data" / "tiny_texts", rows(300), rows(60))
    workdir = tmp_path / "run"
    env = {**os.environ, "XCS_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "launch.py", "--config=configs/xmc.py:data=tiny_texts,smoke",
                          f"--workdir={workdir}", "--config.train.steps=60"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["data"]["train_points"] == 300 and results["data"]["num_labels"] == 8
    assert results["data"]["num_features"] == 50  # 48 topic words + "common" + "words"
    assert results["test"]["P@1"] > 50  # the topic words name the labels
    assert math.isfinite(results["test"]["P@5"])
