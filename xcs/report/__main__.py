"""xcs-report / python -m xcs.report DIR [--table tables/NAME[:arg] | configs/tables/NAME.py[:arg]] [--out OUT]
[--no_plots]"""

from __future__ import annotations

import argparse
import os
import sys

from xcs import config_files
from xcs.report import report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xcs-report", description=__doc__)
    parser.add_argument("directory", help="directory searched for results.json files (e.g. a sweep's workdir)")
    parser.add_argument("--table", default=None,
                        help="table config module `path.py[:arg]` or bundled name `tables/NAME[:arg]`; default: "
                        "the one in DIR/sweep.json")
    parser.add_argument("--out", default=None, help="where table.md/.tex/.json and PNGs go (default DIR/report)")
    parser.add_argument("--no_plots", action="store_true", help="tables only (no matplotlib needed)")
    args = parser.parse_args(argv)
    if args.table is not None:
        try:
            args.table = config_files.resolve(args.table)
        except config_files.ConfigFileError as e:
            parser.exit(2, f"xcs-report: {e}\n")
    # Table modules import `configs.*`; run from anywhere.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    result = report(args.directory, args.out, args.table, plots=not args.no_plots)
    print(result["markdown"])
    print("wrote " + " ".join(result["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
