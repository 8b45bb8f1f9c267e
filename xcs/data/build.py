"""Build a real data set from its public source: `python -m xcs.data.build NAME [--out DIR] [options]`.

    apt-get install -y wordnet-base                      # WordNet 3.0 under /usr/share/wordnet
    python -m xcs.data.build wordnet_hypernyms           # -> data/wordnet_hypernyms (~10 s on 2 cores)
    apt-get install -y linux-source-6.1                  # the kernel's sources as a tarball under /usr/src
    python -m xcs.data.build linux_includes              # -> data/linux_includes
    python -m xcs.data.build wordnet_closure --format=texts --out data/wn_closure_texts

Data sets (one module per source under xcs/data/builders/):

  wordnet_hypernyms  synset text -> its parents and grandparents (~2 labels a point, long tail)
  wordnet_closure    synset text -> all its ancestors (~8 labels a point, one head label on 86 %)
  linux_includes     a kernel C file's text -> the headers it includes (~10 labels a point, head on 42 %)

Every build is deterministic. `--out` defaults to $XCS_DATA_DIR/NAME (XCS_DATA_DIR default ./data),
where `--config=configs/xmc.py:data=NAME` reads it. `--format=xc` (default) writes train.txt /
test.txt in the XC repository format with labels.txt, vocab.txt (and the raw texts with --texts);
`--format=texts` writes {train,test}_texts.txt + {train,test}_labels.txt (label names), which xcs
trains from directly with its own tf-idf vectorizer. Both write stats.json.

The statistics are printed and, for the known versions of a source with the default options,
checked against the expected counts: a difference is one line on stderr and exit status 1.
A missing source is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from xcs.core.errors import EXIT_USER_ERROR, UserError
from xcs.data.builders import common, linux_includes, wordnet
from xcs.data.errors import DataFormatError

# name -> the module that builds it: add_arguments(parser, name), build(name, args, options)
BUILDERS = {"wordnet_hypernyms": wordnet, "wordnet_closure": wordnet, "linux_includes": linux_includes}


def parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    top = argparse.ArgumentParser(prog="python -m xcs.data.build", description=doc[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc[1])
    sub = top.add_subparsers(dest="name", required=True, metavar="NAME", help=", ".join(BUILDERS))
    for name, module in BUILDERS.items():
        p = sub.add_parser(name, description=(module.__doc__ or "").split("\n\n")[0])
        p.add_argument("--out", default=None, help=f"output directory (default $XCS_DATA_DIR/{name}, ./data/{name})")
        p.add_argument("--format", dest="fmt", choices=common.FORMATS, default="xc",
                       help="xc: train.txt/test.txt + labels.txt + vocab.txt; texts: {train,test}_texts.txt + "
                            "{train,test}_labels.txt (label names)")
        p.add_argument("--texts", action="store_true", help="format xc: also write {train,test}_texts.txt")
        p.add_argument("--split", choices=common.SPLITS, default="seen",
                       help="seen: every test label keeps a training point (default); random: a plain split")
        p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
        p.add_argument("--test-frac", type=float, default=0.2, help="share of points drawn for test (default 0.2)")
        p.add_argument("--min-df", type=int, default=2, help="vocabulary: tokens in >= this many training texts")
        p.add_argument("--max-features", type=int, default=100000, help="vocabulary: at most this many tokens")
        module.add_arguments(p, name)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = args.out or os.path.join(os.environ.get("XCS_DATA_DIR", "data"), args.name)
    prog = "xcs.data.build"
    if not 0.0 <= args.test_frac < 1.0 or args.min_df < 1 or args.max_features < 0:
        print(f"{prog}: error: need 0 <= --test-frac < 1, --min-df >= 1, --max-features >= 0", file=sys.stderr)
        return EXIT_USER_ERROR
    opts = common.Options(out=out, seed=args.seed, test_frac=args.test_frac, split=args.split, min_df=args.min_df,
                          max_features=args.max_features, texts=args.texts, fmt=args.fmt)
    try:
        stats, expected = BUILDERS[args.name].build(args.name, args, opts)
    except (UserError, DataFormatError) as e:  # a missing or malformed source, a bad option: one line
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    common.print_statistics(stats)
    print(f"wrote {os.path.abspath(out)}")
    if expected is None:
        print("statistics check: no expected counts for this source version and these options (not checked)")
        return 0
    differences = common.check_statistics(stats, expected)
    if differences:
        print(f"{prog}: statistics check failed: {'; '.join(differences)}", file=sys.stderr)
        return 1
    print("statistics check: " + ", ".join(f"{k} {stats[k]}" for k in common.CHECKED) + " as expected")
    return 0


def run() -> None:
    """Entry point of the `xcs-build-data` console script."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
