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

import difflib
import errno
import os
import re
import signal
import sys
from typing import NoReturn

from absl import app, flags, logging
from ml_collections import config_flags

from xcs import config_files
from xcs.core.errors import EXIT_USER_ERROR, UserError

_CONFIG = config_flags.DEFINE_config_file("config", config_files.resolve("xmc"),
                                          "Config file or bundled config name, optionally `:variant`.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
_OVERWRITE = flags.DEFINE_enum("overwrite", None, ["move", "delete"],
                               "Start over in a workdir that holds a run (of this or another config): `move` it "
                               "aside to WORKDIR.old-N first, or `delete` it. Without it, a workdir with another "
                               "config's run is refused and one of the same config resumes (docs/runs.md).")
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
    if _OVERWRITE.value and _SWEEP.value:
        raise app.UsageError("--overwrite applies to one run, not to --sweep")
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
    results = train_and_evaluate(config, workdir, overwrite=_OVERWRITE.value)
    if not is_primary():
        return
    if results.get("finished_before"):
        print(f"the run in {workdir} finished before with this config; its results (nothing was trained; "
              "--overwrite=move|delete runs it again):")
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


def unknown_override(argv: list[str]) -> str | None:
    """The first `--config.a.b=v` of argv whose key is not declared in configs/default.py, as a message."""
    from configs import default

    declared = default.get_config()
    for arg in argv[1:]:
        match = re.fullmatch(r"--config\.([^=]+)(=.*)?", arg)
        if not match:
            continue
        node, parts = declared, match.group(1).split(".")
        for i, part in enumerate(parts):
            if not hasattr(node, "keys") or part not in node:
                known = list(node.keys()) if hasattr(node, "keys") else []
                close = difflib.get_close_matches(part, known, n=1)
                hint = f" (did you mean {'.'.join(parts[:i] + close)}?)" if close else (
                    f"; config.{'.'.join(parts[:i])} has {', '.join(known)}" if known else "")
                return f"{arg}: config.{match.group(1)} is not a config key{hint}"
            node = node[part]
    return None


def innermost(error: BaseException) -> BaseException:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def parse_flags_or_exit(argv: list[str]) -> list[str]:
    """Parses the flags (loading the config and applying its overrides); a user error is one line, exit 2.

    Returns the arguments left (the program name and positionals), which app.run is given as they are:
    parsing twice would define each `--config.KEY` override flag twice, which absl refuses.
    """
    app.define_help_flags()
    try:
        return flags.FLAGS(argv)
    except Exception as e:  # noqa: BLE001 - every failure here comes from what the user typed
        if debugging():
            raise
        message = unknown_override(argv)
        if message is None:
            inner = innermost(e)
            text = inner.args[0] if isinstance(inner, KeyError) and inner.args else inner
            message = " ".join(str(text).split()) if isinstance(e, KeyError | AttributeError) else " ".join(
                str(e).split())
        fail(message)


def debugging() -> bool:
    """XCS_DEBUG=1 shows the traceback of a user error too."""
    return os.environ.get("XCS_DEBUG", "") not in ("", "0")


def fail(message: str) -> NoReturn:
    print(f"xcs-train: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def _a_file_of_the_run() -> str:
    try:
        return f"a file in {_WORKDIR.value or os.path.join('runs', 'default')}"
    except flags.UnparsedFlagAccessError:
        return "a file of the run"


def os_error_line(error: OSError) -> str | None:
    """One line for a failure the user can fix (disk full, no permission, read-only disk), else None (a bug)."""
    reasons = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.EROFS: "read-only file system"}
    if error.errno not in reasons:
        return None
    where = error.filename or _a_file_of_the_run()
    also = f" and {error.filename2}" if error.filename2 else ""
    return f"{where}{also}: {reasons[error.errno]} ({os.strerror(error.errno)})"


def environment_error_line(error: BaseException) -> str | None:
    """os_error_line of the first OSError in the exception's chain; a library's wrapped 'No space left on
    device' (orbax, tensorstore) as well. None: not the environment's fault (a bug keeps its traceback)."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and os_error_line(seen):
            return os_error_line(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(error).split())
    if "No space left on device" in text or "Disk quota exceeded" in text:
        paths = re.findall(r'"(/[^"]+)"', text)  # tensorstore quotes the file it failed to write
        where = paths[-1] if paths else _a_file_of_the_run()
        return f"{where}: no space left on the device"
    return None


def run(argv: list[str] | None = None) -> None:
    """Entry point of `xcs-train`, `python -m xcs.cli` and `python launch.py`.

    A user error (a bad config file, key, value or combination, missing data) ends with one line on
    stderr and exit status 2, before anything is written; a bug keeps its traceback (status 1).
    SIGTERM/SIGINT while training save a checkpoint and exit 143/130 (xcs/train/preemption.py); Ctrl-C
    at any other moment is one line and exit 130.
    """
    from xcs.train import preemption

    preemption.install()  # SIGTERM/SIGINT are noted from here on, never raised as KeyboardInterrupt
    try:
        _run(argv)
    except KeyboardInterrupt:
        if debugging():
            raise
        print("xcs-train: interrupted (Ctrl-C) outside training; nothing of the run was lost: the same command "
              "resumes it", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


def _run(argv: list[str] | None) -> None:
    argv = list(sys.argv if argv is None else argv)
    try:
        sys.argv = resolve_config_argv(argv)  # the config flag reads sys.argv itself when it parses
    except config_files.ConfigFileError as e:
        fail(str(e))
    from xcs.system import restart_with_huge_pages

    restart_with_huge_pages()  # before any work: glibc reads the tunable only at start (xcs/system.py says why)
    remaining = parse_flags_or_exit(sys.argv)
    if not _SWEEP.value:
        try:
            from xcs.validate import validate  # (imports jax: after the flags, so a typo fails fast)

            validate(_CONFIG.value)  # before the workdir is written or any data is read
        except UserError as e:
            if debugging():
                raise
            fail(str(e))
    logging.set_verbosity(logging.INFO)
    from xcs.train.preemption import Interrupted

    try:
        app.run(main, argv=sys.argv, flags_parser=lambda _: remaining)
    except UserError as e:
        if debugging():
            raise
        fail(str(e))
    except Interrupted as e:  # SIGTERM/SIGINT while training: a checkpoint of the step was saved
        print(f"xcs-train: {e}", file=sys.stderr)
        sys.exit(e.exit_status)
    except Exception as e:  # noqa: BLE001 - a full disk or a permission is the user's to fix; the rest is a bug
        line = environment_error_line(e)
        if line is None or debugging():
            raise
        print(f"xcs-train: error: {line}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: the checkpoint library's threads and tasks, failed on the same disk, would print
        # their tracebacks while the interpreter shuts down. The run's own files are closed (and the lock
        # released) by now.
        os._exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    run()
