"""Command line: train and evaluate one config (`xcs-train`, `python -m xcs.cli`, `python launch.py`).

  xcs-train --config=xmc:data=NAME[,smoke] --workdir=runs/x [--config.a.b=value ...]
  xcs-train --config=tables/NAME:ARG --sweep [--jobs=N] [--dry_run] [--launcher=local|slurm|submitit_local]
            --workdir=runs/x

`--config` is a config file (`configs/xmc.py:ARG`, or any path) or the name of a bundled config
(`xmc:ARG`, `tables/dst:ARG`), found from any working directory (xcs/config_files.py). The
config is loaded and every override applied (a mistyped key fails here, before any work), then
locked, so nothing later can add a key. Re-running the same command resumes from the workdir's
latest checkpoint. With `--sweep`, the config module's `sweep(add, arg=None)` is run, one
subprocess of this command per run (see xcs/sweep.py); other `--config.*` overrides apply to
every run.
"""

from __future__ import annotations

import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from xcs import config_files

_CONFIG = config_flags.DEFINE_config_file("config", config_files.resolve("xmc"),
                                          "Config file or bundled config name, optionally `:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
_SWEEP = flags.DEFINE_bool("sweep", False, "Run the config module's sweep(add, arg), one sub-workdir per run.")
_JOBS = flags.DEFINE_integer("jobs", 1, "With --sweep: runs at a time.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "With --sweep: list the runs and their commands, run nothing.")
_LAUNCHER = flags.DEFINE_enum("launcher", "local", ["local", "slurm", "submitit_local"],
                              "With --sweep: where runs go: local subprocesses, SLURM jobs (submitit), or "
                              "submitit's local executor (the SLURM path, run on this machine).")
_LAUNCHER_PARAMS = flags.DEFINE_string("launcher_params", "", "With --launcher=slurm|submitit_local: submitit "
                                       "executor parameters `key=value,...` (e.g. slurm_partition=gpu,"
                                       "timeout_min=120,gpus_per_node=1).")
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
        sys.exit(sweep())
    if _DRY_RUN.value or _JOBS.value != 1 or _LAUNCHER.value != "local" or _LAUNCHER_PARAMS.value:
        raise app.UsageError("--dry_run, --jobs, --launcher and --launcher_params only apply with --sweep")
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


def sweep() -> int:
    """`--sweep`: every run of the config module's `sweep(add, arg)`; the exit status."""
    from configs import default
    from xcs.sweep import parse_launcher_params, run_sweep

    config_string = config_flags.get_config_filename(flags.FLAGS["config"])
    extra = config_flags.get_override_values(flags.FLAGS["config"])
    stem = os.path.splitext(os.path.basename(config_string.partition(":")[0]))[0]
    try:
        params = parse_launcher_params(_LAUNCHER_PARAMS.value)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    return run_sweep(config_string, _WORKDIR.value or os.path.join("runs", stem), _JOBS.value, _DRY_RUN.value,
                     extra, defaults=default.get_config().to_dict(), launcher=_LAUNCHER.value,
                     launcher_params=params)


def resolve_config_argv(argv: list[str]) -> list[str]:
    """argv with each `--config=X` (or `--config X`) file part resolved (xcs/config_files.py)."""
    out, i = list(argv), 1
    while i < len(out):
        match = re.fullmatch(r"(--?config)(=(.*))?", out[i])
        if match and match.group(2) is not None:
            out[i] = f"{match.group(1)}={config_files.resolve(match.group(3))}"
        elif match and i + 1 < len(out):
            out[i + 1] = config_files.resolve(out[i + 1])
            i += 1
        i += 1
    return out


def run(argv: list[str] | None = None) -> None:
    """Entry point of `xcs-train`, `python -m xcs.cli` and `python launch.py`."""
    argv = list(sys.argv if argv is None else argv)
    try:
        sys.argv = resolve_config_argv(argv)  # the config flag reads sys.argv itself when it parses
    except config_files.ConfigFileError as e:
        print(f"xcs-train: {e}", file=sys.stderr)
        sys.exit(2)
    from xcs.system import restart_with_huge_pages

    restart_with_huge_pages()  # before any work: glibc reads the tunable only at start (xcs/system.py says why)
    logging.set_verbosity(logging.INFO)
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
