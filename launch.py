"""Command line: train and evaluate one config.

  python launch.py --config=configs/xmc.py:data=NAME[,smoke] --workdir=runs/x [--config.a.b=value ...]
  python launch.py --config=configs/tables/x.py:ARG --sweep [--jobs=N] [--dry_run] --workdir=runs/x

The config is loaded and every override applied (a mistyped key fails here, before any work),
then locked, so nothing later can add a key. Re-running the same command resumes from the
workdir's latest checkpoint. With `--sweep`, the config module's `sweep(add, arg=None)` is run,
one subprocess of this command per run (see xcs/sweep.py); other `--config.*` overrides apply to
every run.
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
_SWEEP = flags.DEFINE_bool("sweep", False, "Run the config module's sweep(add, arg), one sub-workdir per run.")
_JOBS = flags.DEFINE_integer("jobs", 1, "With --sweep: runs at a time.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "With --sweep: list the runs and their commands, run nothing.")
# Multi-host (xcs/parallel/distributed.py): every process runs this same command with its own --process_id.
_COORDINATOR = flags.DEFINE_string("coordinator", None, "Multi-process: HOST:PORT of process 0 (jax.distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process: how many processes in all.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process: this process's id, 0..num_processes-1.")
_MULTIHOST_AUTO = flags.DEFINE_bool("multihost_auto", False, "Multi-process: read coordinator, count and id from "
                                    "the cluster environment (SLURM, Open MPI, Kubernetes) via jax.distributed.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _SWEEP.value:
        from configs import default
        from xcs.sweep import run_sweep

        config_string = config_flags.get_config_filename(flags.FLAGS["config"])
        extra = config_flags.get_override_values(flags.FLAGS["config"])
        stem = os.path.splitext(os.path.basename(config_string.partition(":")[0]))[0]
        sys.exit(run_sweep(config_string, _WORKDIR.value or os.path.join("runs", stem), _JOBS.value,
                           _DRY_RUN.value, extra, defaults=default.get_config().to_dict()))
    if _DRY_RUN.value or _JOBS.value != 1:
        raise app.UsageError("--dry_run and --jobs only apply with --sweep")
    from xcs.parallel.distributed import initialize, is_primary

    try:
        initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _MULTIHOST_AUTO.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    from xcs.train.loop import results_table, train_and_evaluate

    config = _CONFIG.value
    workdir = _WORKDIR.value or os.path.join("runs", "default")
    results = train_and_evaluate(config, workdir)
    if not is_primary():
        return
    print(results_table(results))
    print(f"workdir: {results['workdir']}  (results.json, metrics.jsonl, predictions.txt, checkpoints/)")


if __name__ == "__main__":
    from xcs.system import restart_with_huge_pages

    restart_with_huge_pages()  # before any work: glibc reads the tunable only at start (xcs/system.py says why)
    logging.set_verbosity(logging.INFO)
    app.run(main)
