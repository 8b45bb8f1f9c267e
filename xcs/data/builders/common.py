"""What every builder shares: the split, label ids, tf-idf features, the writers and the statistics check.

A builder turns its source into `Point`s (a text and its label names) and calls `write_dataset`.
Everything here is deterministic: the same points and options give the same bytes.

Output formats (`fmt`):

- `xc`: `train.txt` / `test.txt` in the Extreme Classification Repository format (header
  `N F L`, then `l1,l2,... f:v f:v ...`, 0-based ids sorted, values `%.6g`), `labels.txt`
  (label id -> name), `vocab.txt` (feature id -> token); with `texts=True` also
  `train_texts.txt` / `test_texts.txt`, the raw text of each point in the same order;
- `texts`: `{train,test}_texts.txt` and `{train,test}_labels.txt` (label names separated by a
  space, one point per line): the texts + label names layout that xcs trains from directly,
  fitting its own tf-idf vectorizer (xcs.data.text_source) the same way as `xc` does here.

Both write `stats.json`. Features: xcs.data.tfidf's recipe, fitted on the training split only.
Labels: ids by decreasing training frequency (ties by name); labels seen only in test follow.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import random
from collections.abc import Sequence

from xcs.core.errors import UserError
from xcs.data.tfidf import TfidfVectorizer

FORMATS = ("xc", "texts")
SPLITS = ("seen", "random")


class SourceNotFound(UserError):
    """The builder's source files are missing; the message says how to get them (one line)."""


@dataclasses.dataclass(frozen=True)
class Point:
    text: str  # the input text (one line once whitespace is collapsed)
    labels: tuple[str, ...]  # label names, sorted, without repeats


@dataclasses.dataclass(frozen=True)
class Options:
    """What every builder accepts (the command line's common options)."""

    out: str
    seed: int = 0
    test_frac: float = 0.2
    split: str = "seen"  # seen: every test label keeps a training point | random
    min_df: int = 2  # vocabulary: tokens in >= min_df training texts
    max_features: int = 100000  # vocabulary size limit (most frequent tokens)
    texts: bool = False  # fmt xc: also write {train,test}_texts.txt
    fmt: str = "xc"  # xc | texts

    def shape(self) -> tuple:
        """The options that decide the set's content (not where or in which format it is written)."""
        return self.seed, self.test_frac, self.split, self.min_df, self.max_features


def sha256_files(paths: Sequence[str]) -> str:
    """One SHA-256 over the bytes of `paths` in order (identifies a source's version)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def split_points(label_sets: Sequence[Sequence[str]], test_frac: float, seed: int,
                 mode: str) -> tuple[list[int], list[int]]:
    """(train ids, test ids), each ascending.

    The points are visited in a seeded random order (Python's `random.Random(seed)`: one shuffle,
    then one draw per point in that order). A point goes to test when its draw is < test_frac; in
    mode 'seen' only if each of its labels still has another point left for training, so that no
    test label is unseen in training (the realised test fraction is a little lower).
    """
    if mode not in SPLITS:
        raise ValueError(f"split={mode!r}: expected one of {', '.join(SPLITS)}")
    rng = random.Random(seed)
    order = list(range(len(label_sets)))
    rng.shuffle(order)
    draw = [0.0] * len(order)
    for i in order:
        draw[i] = rng.random()
    left = collections.Counter(name for labels in label_sets for name in labels)
    train, test = [], []
    for i in order:
        if draw[i] < test_frac and (mode == "random" or all(left[name] > 1 for name in label_sets[i])):
            test.append(i)
            if mode == "seen":
                left.subtract(label_sets[i])
        else:
            train.append(i)
    return sorted(train), sorted(test)


def label_order(train_sets: Sequence[Sequence[str]], test_sets: Sequence[Sequence[str]]) -> list[str]:
    """Label names by id: decreasing training frequency (ties by name), then test-only labels likewise."""
    in_train = collections.Counter(n for s in train_sets for n in s)
    in_test = collections.Counter(n for s in test_sets for n in s)
    names = sorted(in_train, key=lambda n: (-in_train[n], n))
    return names + sorted((n for n in in_test if n not in in_train), key=lambda n: (-in_test[n], n))


def one_line(text: str) -> str:
    """The text with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)


def write_xc(path: str, rows: Sequence[tuple[Sequence[int], Sequence[tuple[int, float]]]], num_features: int,
             num_labels: int) -> None:
    """The XC repository's single-file format; values with 6 significant digits (`%.6g`)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(f"{len(rows)} {num_features} {num_labels}\n")
        for labels, feats in rows:
            f.write(",".join(map(str, labels)) + "".join(f" {j}:{v:.6g}" for j, v in feats) + "\n")


def write_dataset(points: Sequence[Point], opts: Options, name: str, source: dict) -> dict:
    """Splits, featurises and writes `points` to opts.out in format opts.fmt; returns the statistics.

    `source` (what the data came from: path, sha256, builder options) is recorded in stats.json.
    """
    if opts.fmt not in FORMATS:
        raise ValueError(f"format={opts.fmt!r}: expected one of {', '.join(FORMATS)}")
    os.makedirs(opts.out, exist_ok=True)
    train_idx, test_idx = split_points([p.labels for p in points], opts.test_frac, opts.seed, opts.split)
    vec = TfidfVectorizer.fit((points[i].text for i in train_idx), opts.min_df, opts.max_features)
    names = label_order([points[i].labels for i in train_idx], [points[i].labels for i in test_idx])
    label_id = {n: j for j, n in enumerate(names)}
    rows = {split: [(sorted(label_id[n] for n in points[i].labels), vec.row(points[i].text)) for i in idx]
            for split, idx in (("train", train_idx), ("test", test_idx))}
    split_idx = {"train": train_idx, "test": test_idx}
    if opts.fmt == "xc":
        for split in ("train", "test"):
            write_xc(os.path.join(opts.out, f"{split}.txt"), rows[split], vec.num_features, len(names))
        _write_lines(os.path.join(opts.out, "labels.txt"), [one_line(n) for n in names])
        _write_lines(os.path.join(opts.out, "vocab.txt"), vec.vocabulary)
        if opts.texts:
            for split, idx in split_idx.items():
                _write_lines(os.path.join(opts.out, f"{split}_texts.txt"), [one_line(points[i].text) for i in idx])
    else:
        bad = [n for n in names if n != one_line(n) or " " in n or not n]
        if bad:
            raise UserError(f"label name {bad[0]!r} holds whitespace: format texts separates names by spaces")
        for split, idx in split_idx.items():
            _write_lines(os.path.join(opts.out, f"{split}_texts.txt"), [one_line(points[i].text) for i in idx])
            _write_lines(os.path.join(opts.out, f"{split}_labels.txt"), [" ".join(points[i].labels) for i in idx])
    stats = statistics(name, rows, names, vec.num_features)
    stats.update(seed=opts.seed, test_frac=opts.test_frac, split=opts.split, min_df=opts.min_df,
                 max_features=opts.max_features, format=opts.fmt, source=source)
    with open(os.path.join(opts.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    return stats


def statistics(name: str, rows: dict, names: Sequence[str], num_features: int) -> dict:
    """Counts and shape of the written set, and the most-frequent-labels baseline on test."""
    train, test = rows["train"], rows["test"]
    train_freq = collections.Counter(j for labels, _ in train for j in labels)
    test_freq = collections.Counter(j for labels, _ in test for j in labels)
    occ_train, occ_test = sum(train_freq.values()), sum(test_freq.values())
    top5 = sorted(train_freq, key=lambda j: (-train_freq[j], j))[:5]
    p1 = sum(bool(top5) and top5[0] in labels for labels, _ in test)
    p5 = sum(len(set(top5) & set(labels)) / 5 for labels, _ in test)
    unseen = [j for j in test_freq if j not in train_freq]

    def ratio(a: float, b: float, digits: int) -> float:
        return round(a / max(1, b), digits)

    return {
        "name": name,
        "n_train": len(train),
        "n_test": len(test),
        "n_features": num_features,
        "n_labels": len(names),
        "n_labels_in_train": len(train_freq),
        "avg_labels_per_point_train": ratio(occ_train, len(train), 3),
        "avg_points_per_label_train": ratio(occ_train, len(train_freq), 3),
        "avg_nnz_features_train": ratio(sum(len(f) for _, f in train), len(train), 2),
        "train_points_without_features": sum(not f for _, f in train),
        "test_points_without_features": sum(not f for _, f in test),
        "frac_test_label_occurrences_unseen_in_train": ratio(sum(test_freq[j] for j in unseen), occ_test, 4),
        "frac_distinct_test_labels_unseen_in_train": ratio(len(unseen), len(test_freq), 4),
        "frac_labels_with_le5_train_points": ratio(sum(c <= 5 for c in train_freq.values()), len(train_freq), 4),
        "frac_train_points_with_top_label": ratio(train_freq[top5[0]] if top5 else 0, len(train), 4),
        "baseline_most_frequent_P@1": ratio(p1, len(test), 4),
        "baseline_most_frequent_P@5": ratio(p5, len(test), 4),
        "top5_train_labels": [names[j] for j in top5],
    }


CHECKED = ("n_train", "n_test", "n_features", "n_labels", "avg_labels_per_point_train")


def check_statistics(stats: dict, expected: dict | None) -> list[str]:
    """The differences between `stats` and `expected` (the CHECKED keys it holds); [] when they agree."""
    if expected is None:
        return []
    return [f"{k} {stats[k]} (expected {expected[k]})" for k in CHECKED if k in expected and stats[k] != expected[k]]


def print_statistics(stats: dict) -> None:
    for key, value in stats.items():
        if key != "source":
            print(f"{key:45s} {value}")
