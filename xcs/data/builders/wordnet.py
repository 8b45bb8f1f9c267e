"""WordNet 3.0 data sets: a noun or verb synset's text -> its hypernym synsets.

Source (written by Princeton's lexicographers): WordNet 3.0's `data.noun` and `data.verb` as the
Debian package `wordnet-base` installs them (`apt-get install -y wordnet-base`, files under
/usr/share/wordnet; adjectives and adverbs have no hypernyms).

One point per noun or verb synset with at least one hypernym (95,322 of 95,882). Input text = the
synset's lemmas ('_' read as a space) and its whole gloss (definition and quoted examples).
Labels = the synsets reached by following hypernym ('@') and instance-hypernym ('@i') pointers up
to `depth` steps (0 = no limit: the full closure), named `<first lemma>.<pos>.<8-digit offset>`,
e.g. `canine.n.02083346`.

- `wordnet_hypernyms` (depth 2): parents and grandparents, ~2 labels a point, a long tail
  (75 % of the labels have <= 5 training points);
- `wordnet_closure` (depth 0): every ancestor, ~8 labels a point with a dominant head label
  (`entity.n.00001740` is a label of 86 % of the training points), the same 20,472 labels.

The data file format (WordNet's wndb(5)): one synset per line,
`offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [symbol offset pos source/target]...
[frames] | gloss`; lines starting with two spaces are the licence header.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from xcs.core.errors import UserError
from xcs.data.builders import common
from xcs.data.errors import DataFormatError

WORDNET_DIR = "/usr/share/wordnet"
FILES = {"n": "data.noun", "v": "data.verb"}
HYPERNYM_POINTERS = ("@", "@i")

# The statistics of the default builds of the Debian files, keyed by (name, sha256 of data.noun + data.verb,
# depth, common.Options.shape(): seed 0, test_frac 0.2, split seen, min_df 2, max_features 100000).
WORDNET_3_0_DEBIAN = "a9d8166941aa48910551e8aea2cad7932775675dfd8f705d0a8bf2035160a436"
_DEFAULTS = common.Options(out="").shape()
EXPECTED = {
    ("wordnet_hypernyms", WORDNET_3_0_DEBIAN, 2, _DEFAULTS): dict(
        n_train=77793, n_test=17529, n_features=42571, n_labels=20472, avg_labels_per_point_train=2.049),
    ("wordnet_closure", WORDNET_3_0_DEBIAN, 0, _DEFAULTS): dict(
        n_train=77792, n_test=17530, n_features=42570, n_labels=20472, avg_labels_per_point_train=8.174),
}
DEFAULT_DEPTH = {"wordnet_hypernyms": 2, "wordnet_closure": 0}


@dataclasses.dataclass(frozen=True)
class Synset:
    words: tuple[str, ...]  # lemmas, '_' between words
    hypernyms: tuple[tuple[str, str], ...]  # (offset, pos) of each hypernym / instance hypernym
    gloss: str


def read_synsets(wordnet_dir: str) -> dict[tuple[str, str], Synset]:
    """{(offset, pos): Synset} of the nouns and verbs in `wordnet_dir`."""
    missing = [f for f in FILES.values() if not os.path.isfile(os.path.join(wordnet_dir, f))]
    if missing:
        raise common.SourceNotFound(
            f"WordNet not found: no {' or '.join(missing)} in {wordnet_dir} (install it with "
            f"`apt-get install -y wordnet-base`, or pass --wordnet-dir DIR)")
    synsets = {}
    for pos, name in FILES.items():
        path = os.path.join(wordnet_dir, name)
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.startswith("  "):  # licence header
                    continue
                try:
                    key, synset = _parse_line(line, pos)
                except (IndexError, ValueError) as e:
                    raise DataFormatError(path, number, None, f"not a WordNet data line ({e})") from None
                synsets[key] = synset
    return synsets


def _parse_line(line: str, pos: str) -> tuple[tuple[str, str], Synset]:
    head, bar, gloss = line.partition(" | ")
    fields = head.split()
    n_words = int(fields[3], 16)
    words = tuple(fields[4 + 2 * i] for i in range(n_words))
    at = 4 + 2 * n_words
    n_pointers = int(fields[at])
    pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(n_pointers)]
    if not words or any(len(p) < 4 for p in pointers):
        raise ValueError("fewer fields than its counts say")
    hypernyms = tuple((off, ppos) for sym, off, ppos, *_ in pointers if sym in HYPERNYM_POINTERS)
    return (fields[0], pos), Synset(words, hypernyms, gloss.strip())


def label_name(synsets: dict[tuple[str, str], Synset], key: tuple[str, str]) -> str:
    return f"{synsets[key].words[0].lower()}.{key[1]}.{key[0]}"


def ancestors(synsets: dict[tuple[str, str], Synset], key: tuple[str, str], depth: int) -> set[tuple[str, str]]:
    """The synsets up to `depth` hypernym steps above `key` (0: all of them)."""
    found: set[tuple[str, str]] = set()
    frontier = set(synsets[key].hypernyms)
    step = 0
    while frontier and (depth == 0 or step < depth):
        found |= frontier
        frontier = {h for k in frontier for h in synsets[k].hypernyms} - found
        step += 1
    return found


def points(synsets: dict[tuple[str, str], Synset], depth: int) -> list[common.Point]:
    """One point per synset with a hypernym, in the order of (offset, pos)."""
    out = []
    for key in sorted(synsets):
        labels = ancestors(synsets, key, depth)
        if labels:
            s = synsets[key]
            text = " ".join(w.replace("_", " ") for w in s.words) + " " + s.gloss
            out.append(common.Point(text, tuple(sorted(label_name(synsets, k) for k in labels))))
    return out


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--wordnet-dir", default=WORDNET_DIR,
                        help=f"where data.noun and data.verb are (default {WORDNET_DIR}: Debian's wordnet-base)")
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH[name],
                        help=f"hypernym steps that give labels; 0 = all ancestors (default {DEFAULT_DEPTH[name]})")


def build(name: str, args: argparse.Namespace, opts: common.Options) -> tuple[dict, dict | None]:
    """Writes the data set `name`; returns (statistics, the expected statistics or None when unknown)."""
    if args.depth < 0:
        raise UserError(f"--depth={args.depth}: must be >= 0 (0 = all ancestors)")
    synsets = read_synsets(args.wordnet_dir)
    pts = points(synsets, args.depth)
    print(f"synsets: {len(synsets)}, points with >= 1 hypernym: {len(pts)}")
    digest = common.sha256_files([os.path.join(args.wordnet_dir, f) for f in FILES.values()])
    source = {"wordnet_dir": os.path.abspath(args.wordnet_dir), "sha256": digest, "depth": args.depth}
    stats = common.write_dataset(pts, opts, name, source)
    return stats, EXPECTED.get((name, digest, args.depth, opts.shape()))
