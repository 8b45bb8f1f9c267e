"""Command line: train and evaluate one config; the same as the `xcs-train` console script.

  python launch.py --config=configs/xmc.py:data=NAME[,smoke] --workdir=runs/x [--config.a.b=value ...]
  python launch.py --config=configs/tables/x.py:ARG --sweep [--jobs=N] [--dry_run] --workdir=runs/x

Flags and behaviour: xcs/cli.py.
"""

import os
import sys

# Config modules import `configs.*` and `xcs.*` from the repository root (without installing xcs).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    try:
        from xcs.cli import run
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, as everywhere else (xcs/cli.py)
        print("xcs-train: interrupted while starting", file=sys.stderr)
        sys.exit(130)
    run()
