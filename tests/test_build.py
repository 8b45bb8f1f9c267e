"""python -m xcs.data.build: the WordNet builders on a tiny fake WordNet written here (no Debian package)."""

from __future__ import annotations

import json
import math
import random

import pytest

from xcs.data import build, texts
from xcs.data.builders import common, wordnet
from xcs.data.xmc_repo import read_single_file

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by\n  2 Princeton University\n"
NOUNS = [
    "00000001 03 n 01 entity 0 000 | that which exists",
    "00000002 03 n 02 physical_entity 0 thing 0 001 @ 00000001 n 0000 | an entity that has physical existence",
    '00000003 03 n 01 animal 0 001 @ 00000002 n 0000 | a living organism; "animals move"',
    "00000004 05 n 01 dog 0 002 @ 00000003 n 0000 ~ 00000005 n 0000 | a domestic animal",
    "00000005 05 n 01 puppy 0 001 @ 00000004 n 0000 | a young dog",
    "00000006 05 n 01 Rex 0 001 @i 00000004 n 0000 | a famous dog",
]
VERBS = [
    "00000001 29 v 01 move 0 000 01 + 01 00 | change position",
    "00000007 29 v 01 run 0 001 @ 00000001 v 0000 01 + 02 00 | move fast",
]
# Points in (offset, pos) order: physical_entity, animal, dog, puppy, Rex, run (entity and move have no hypernym).
TEXTS = ["physical entity thing an entity that has physical existence", 'animal a living organism; "animals move"',
         "dog a domestic animal", "puppy a young dog", "Rex a famous dog", "run move fast"]


@pytest.fixture
def fake_wordnet(tmp_path):
    d = tmp_path / "wordnet"
    d.mkdir()
    (d / "data.noun").write_text(LICENCE + "\n".join(NOUNS) + "\n")
    (d / "data.verb").write_text(LICENCE + "\n".join(VERBS) + "\n")
    return d


def run(name, wn, out, *extra):
    return build.main([name, f"--wordnet-dir={wn}", f"--out={out}", *extra])


def test_hypernyms_by_hand(fake_wordnet, tmp_path, capsys):
    out = tmp_path / "h"
    assert run("wordnet_hypernyms", fake_wordnet, out, "--test-frac=0") == 0
    # Vocabulary (train df >= 2): dog (3 texts), then animal and move (2 each, by token).
    assert (out / "vocab.txt").read_text() == "dog\nanimal\nmove\n"
    # Labels by training frequency, ties by name: animal 3; dog, entity, physical_entity 2; move 1.
    assert (out / "labels.txt").read_text().split() == [
        "animal.n.00000003", "dog.n.00000004", "entity.n.00000001", "physical_entity.n.00000002", "move.v.00000001"]
    idf_dog, idf_2 = math.log(7 / 4) + 1, math.log(7 / 3) + 1
    norm = math.hypot(idf_dog, idf_2)
    half = 1 / math.sqrt(2)
    assert (out / "train.txt").read_text().splitlines() == [
        "6 3 5",
        "2",  # physical_entity: no token in the vocabulary
        f"2,3 1:{half:.6g} 2:{half:.6g}",  # animal: parents physical_entity, grandparent entity
        f"0,3 0:{idf_dog / norm:.6g} 1:{idf_2 / norm:.6g}",
        "0,1 0:1",  # puppy
        "0,1 0:1",  # Rex (instance hypernym)
        "4 2:1",  # run (verb)
    ]
    assert (out / "test.txt").read_text() == "0 3 5\n"
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["n_train"], stats["n_features"], stats["n_labels"]) == (6, 3, 5)
    assert stats["source"]["depth"] == 2 and stats["source"]["sha256"] == common.sha256_files(
        [fake_wordnet / "data.noun", fake_wordnet / "data.verb"])
    printed = capsys.readouterr().out
    assert "n_train" in printed and "not checked" in printed
    features, labels = read_single_file(str(out / "train.txt"), cache=False)  # the project reads what it wrote
    assert labels.to_lists()[1] == [2, 3] and features.num_cols == 3


def test_closure_by_hand(fake_wordnet, tmp_path):
    out = tmp_path / "c"
    assert run("wordnet_closure", fake_wordnet, out, "--test-frac=0", "--texts") == 0
    # Labels: entity 5, physical_entity 4, animal 3, dog 2, move 1.
    assert (out / "labels.txt").read_text().split() == [
        "entity.n.00000001", "physical_entity.n.00000002", "animal.n.00000003", "dog.n.00000004", "move.v.00000001"]
    _, labels = read_single_file(str(out / "train.txt"), cache=False)
    assert labels.to_lists() == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3], [4]]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["avg_labels_per_point_train"] == 2.5 and stats["frac_train_points_with_top_label"] == round(5 / 6, 4)
    assert texts.read_lines(str(out / "train_texts.txt")) == TEXTS
    # --depth 1 is the parents only.
    assert run("wordnet_closure", fake_wordnet, tmp_path / "d1", "--test-frac=0", "--depth=1") == 0
    assert json.loads((tmp_path / "d1" / "stats.json").read_text())["avg_labels_per_point_train"] == 1.0


def test_texts_format_writes_names(fake_wordnet, tmp_path):
    out = tmp_path / "t"
    assert run("wordnet_hypernyms", fake_wordnet, out, "--test-frac=0", "--format=texts") == 0
    assert texts.read_lines(str(out / "train_texts.txt")) == TEXTS
    assert texts.read_lines(str(out / "train_labels.txt"))[:2] == [
        "entity.n.00000001", "entity.n.00000001 physical_entity.n.00000002"]
    assert (out / "test_texts.txt").read_text() == "" and not (out / "train.txt").exists()


def test_split_is_deterministic_and_seen_keeps_every_test_label_in_train(fake_wordnet, tmp_path):
    rng = random.Random(1)
    sets = [tuple(sorted({f"l{rng.randrange(30)}" for _ in range(rng.randint(1, 3))})) for _ in range(300)]
    train, test = common.split_points(sets, 0.3, seed=4, mode="seen")
    assert (train, test) == common.split_points(sets, 0.3, seed=4, mode="seen")
    assert sorted(train + test) == list(range(300)) and 40 < len(test) < 90
    in_train = {n for i in train for n in sets[i]}
    assert all(n in in_train for i in test for n in sets[i])
    train_r, test_r = common.split_points(sets, 0.3, seed=4, mode="random")
    assert set(test) <= set(test_r)  # the same draws; 'seen' only keeps some of them in train
    for out in ("a", "b"):  # a build is deterministic
        assert run("wordnet_hypernyms", fake_wordnet, tmp_path / out, "--test-frac=0.5", "--split=random") == 0
    assert (tmp_path / "a" / "train.txt").read_bytes() == (tmp_path / "b" / "train.txt").read_bytes()


def test_statistics_check(fake_wordnet, tmp_path, capsys, monkeypatch):
    digest = common.sha256_files([fake_wordnet / "data.noun", fake_wordnet / "data.verb"])
    counts = dict(n_train=6, n_test=0, n_features=3, n_labels=5, avg_labels_per_point_train=round(10 / 6, 3))
    key = ("wordnet_hypernyms", digest, 2, common.Options(out="", test_frac=0.0).shape())
    monkeypatch.setitem(wordnet.EXPECTED, key, counts)
    assert run("wordnet_hypernyms", fake_wordnet, tmp_path / "ok", "--test-frac=0", "--seed=1") == 0
    assert "not checked" in capsys.readouterr().out  # other options: no expectation
    assert run("wordnet_hypernyms", fake_wordnet, tmp_path / "ok", "--test-frac=0", "--format=texts") == 0
    assert "n_train 6, n_test 0, n_features 3, n_labels 5, avg_labels_per_point_train 1.667 as expected" in (
        capsys.readouterr().out)
    monkeypatch.setitem(wordnet.EXPECTED, key, {**counts, "n_labels": 6})
    assert run("wordnet_hypernyms", fake_wordnet, tmp_path / "bad", "--test-frac=0") == 1
    assert capsys.readouterr().err.strip() == "xcs.data.build: statistics check failed: n_labels 5 (expected 6)"


def test_missing_or_malformed_source_is_one_line_and_exit_2(tmp_path, fake_wordnet, capsys):
    assert run("wordnet_hypernyms", tmp_path / "nowhere", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WordNet not found" in err and "apt-get install -y wordnet-base" in err
    with open(fake_wordnet / "data.verb", "a") as f:
        f.write("00000009 29 v 01 walk 0 002 @ 00000001 v 0000 |  truncated\n")
    assert run("wordnet_hypernyms", fake_wordnet, tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.verb:5: not a WordNet data line" in err
    assert run("wordnet_hypernyms", fake_wordnet, tmp_path / "o", "--depth=-1") == 2
