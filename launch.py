"""Command line: train and evaluate one config.

  python launch.py --config=configs/xmc.py:data=NAME[,smoke] --workdir=runs/x [--config.a.b=value ...]

The config is loaded and every override applied (a mistyped key fails here, before any work),
then locked, so nothing later can add a key. Re-running the same command resumes from the
workdir's latest checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# Config modules import `configs.*` and `xcs.*` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_CONFIG = config_flags.DEFINE_config_file("config", "configs/xmc.py", "Config file, optionally `:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from xcs.train.loop import results_table, train_and_evaluate

    config = _CONFIG.value
    workdir = _WORKDIR.value or os.path.join("runs", "default")
    results = train_and_evaluate(config, workdir)
    print(results_table(results))
    print(f"workdir: {results['workdir']}  (results.json, metrics.jsonl, predictions.txt, checkpoints/)")


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    app.run(main)
