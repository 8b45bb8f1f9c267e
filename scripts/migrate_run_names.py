"""One-off: renames sweep run folders from the old override-string names to xcs.sweep.run_name's.

Old names were the overrides as `k=v,k=v` (cut at 100 characters, then a hash); new names are a short
slug and a hash of the overrides, with `index.json` beside them mapping names to overrides. Renames
the runs of a sweep (and its peers) found under DIR, given the table config the sweep ran:

    .venv/bin/python scripts/migrate_run_names.py DIR[=CONFIG] ...

CONFIG defaults to the one DIR/sweep.json records. Without --apply it only prints what it would do.
Run on the committed summaries (2026-12-02):

    .venv/bin/python scripts/migrate_run_names.py --apply \\
        experiments/results/dst_wn_k32/runs=configs/tables/dst.py:data=wordnet_hypernyms,rows=k32 \\
        experiments/results/dst_wn_k64/runs=configs/tables/dst.py:data=wordnet_hypernyms,rows=k64 \\
        experiments/results/gated_region/runs=configs/tables/gated.py:data=region \\
        experiments/results/gated_wordnet/runs=configs/tables/gated.py:data=wordnet_hypernyms
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xcs.sweep import _format, collect, load_module, run_name, split_config_string, write_index  # noqa: E402

OLD_MAX_NAME = 100


def old_run_name(overrides: dict) -> str:
    """xcs.sweep.run_name before 2026-12-02."""
    if not overrides:
        return "base"
    keys = sorted(overrides, key=lambda k: (k != "arg", k))
    text = ",".join(f"{k}={_format(overrides[k])}" for k in keys)
    safe = lambda s: re.sub(r"[^A-Za-z0-9._=+-]", "_", s)  # noqa: E731
    name = ",".join(f"{safe(k)}={safe(_format(overrides[k]))}" for k in keys)
    if len(name) > OLD_MAX_NAME:
        name = name[: OLD_MAX_NAME - 9] + "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return name


def renames(directory: str, config: str) -> list[tuple[str, str, dict]]:
    """(old relative path, new relative path, overrides) of every run and peer the config lists."""
    path, base_arg = split_config_string(config)
    module = load_module(path)
    out = []
    for overrides in collect(module, base_arg):
        arg = overrides.pop("arg", base_arg)
        key = {**({"arg": arg} if arg != base_arg else {}), **overrides}
        out.append((old_run_name(key), run_name(key), key))
    if callable(getattr(module, "peers", None)):
        for entry in collect(module, base_arg, "peers"):
            key = dict(entry)
            out.append((os.path.join("peers", old_run_name(key)[len("method="):]),
                        os.path.join("peers", run_name(key)), key))
    return out


class _Named:
    def __init__(self, name: str, overrides: dict):
        self.name, self.overrides = name, overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", help="DIR[=CONFIG]")
    parser.add_argument("--apply", action="store_true", help="rename (default: print only)")
    args = parser.parse_args(argv)
    status = 0
    for item in args.dirs:
        directory, _, config = item.partition("=")
        if not config:
            with open(os.path.join(directory, "sweep.json")) as f:
                config = json.load(f)["config"]
        moved, indexed, seen = 0, [], set()
        for old, new, overrides in renames(directory, config):
            seen |= {old, new}
            if os.path.isdir(os.path.join(directory, new)):
                indexed.append(_Named(new, overrides))
                continue
            if not os.path.isdir(os.path.join(directory, old)):
                continue
            print(f"{directory}: {old} -> {new}")
            if args.apply:
                os.rename(os.path.join(directory, old), os.path.join(directory, new))
            moved += 1
            indexed.append(_Named(new, overrides))
        left = [d for d in sorted(os.listdir(directory)) if os.path.isdir(os.path.join(directory, d))
                and d not in seen and d != "peers" and os.path.exists(os.path.join(directory, d, "results.json"))]
        for d in left:
            print(f"{directory}: {d}: not a run of {config}; left as it is", file=sys.stderr)
            status = 1
        if args.apply and indexed:
            write_index(directory, [n for n in indexed if not n.name.startswith("peers" + os.sep)])
        print(f"{directory}: {moved} renamed, {len(indexed)} runs of {config}" + ("" if args.apply else " (dry run)"))
    return status


if __name__ == "__main__":
    sys.exit(main())
