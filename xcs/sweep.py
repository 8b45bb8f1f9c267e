"""Sweeps: a config module's `sweep(add, arg=None)` run as one subprocess (or cluster job) per run.

    xcs-train --config=tables/x:ARG --sweep [--jobs=N] [--dry_run] [--launcher=local|slurm|submitit_local]
              [--launcher_params=key=value,...] --workdir=runs/x       (or python launch.py ...)

Each `add(**overrides)` in the module's `sweep` is one run. Keys are dotted config paths
(`add(**{"model.encoder.width": 512, "seed": 1})`); the special key `arg` replaces the `:ARG`
variant string of that run. Every run's config is built and every override applied here before
anything starts, so a mistyped key fails at once, naming it. Then each run goes to its own
sub-workdir, named from its overrides (`run_name`: a readable slug and a hash, e.g.
`sparse-rigl-fan_in32-5d1c0e2a`; `index.json` in the sweep's workdir maps every name to its
overrides), as `python -m xcs.cli` in a subprocess (its output in `launch.log` there): a failing
run does not stop the others, `--jobs N` runs N at a time, a finished run (results.json present)
is skipped and a half-finished one resumes from its checkpoints. `sweep.json` in the workdir
records every run, its single-run command and status.

Launchers: `local` runs the subprocesses here; `slurm` submits each run as a SLURM job through
submitit (`--jobs` jobs in the queue at a time; `--launcher_params` go to the executor, e.g.
`slurm_partition=gpu,timeout_min=240,gpus_per_node=1`; submitit's own logs in WORKDIR/submitit/);
`submitit_local` is the same path through submitit's local executor, on this machine. All three
give the same run folders, skipping, records and report. A SLURM job runs this interpreter with these
paths from this directory, so the nodes must see them (a shared filesystem, as the workdir needs anyway).

The executor (`execute`) only runs commands, so `experiments/peers.py` uses it too; how a command is
started, polled and stopped on each launcher is xcs/launchers.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import ml_collections
from ml_collections.config_flags import config_path

from xcs import launchers
from xcs.config import flatten
from xcs.launchers import LAUNCHERS, parse_launcher_params
from xcs.train.workdir import RESULT_NEUTRAL_KEYS

MAX_SLUG = 56  # the readable part of a run name; a hash of all its overrides follows
INDEX = "index.json"  # in a sweep's workdir: every run name -> its overrides


@dataclasses.dataclass
class Run:
    """One command of a sweep, run in its own workdir; done when `workdir/results.json` exists."""

    name: str  # sub-workdir name, stable for the same overrides
    workdir: str
    command: list[str]  # argv, run from the current directory
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] | None = None  # the run's whole config as launch.py will write it (config.json)
    defaults: dict[str, Any] | None = None  # configs/default.py's values, flattened (new keys are judged by them)
    status: str = "pending"  # pending | skipped | ran | failed | interrupted
    seconds: float = 0.0
    returncode: int | None = None

    @property
    def log(self) -> str:
        return os.path.join(self.workdir, "launch.log")

    @property
    def done(self) -> bool:
        return os.path.exists(os.path.join(self.workdir, "results.json"))

    def changed_keys(self) -> list[str]:
        """Keys whose value in an earlier `workdir/config.json` differs from this sweep's config.

        A finished run is reused and an unfinished one resumed from its checkpoints, so a config module
        edited since would silently keep the old numbers. A key only the earlier file has comes from an
        older configs/default.py and is ignored; a key only this config has is new in configs/default.py,
        and its default keeps the behaviour of the versions before it, so it is a change only when this
        config sets it away from that default (`defaults`; without them such keys are ignored).
        """
        path = os.path.join(self.workdir, "config.json")
        if self.config is None or not os.path.exists(path):
            return []
        with open(path) as f:
            before = flatten(json.load(f))
        now = flatten(json.loads(json.dumps(self.config)))  # tuples -> lists, as in the file
        keys = sorted((before.keys() & now.keys()) - set(RESULT_NEUTRAL_KEYS))
        changed = [f"{k} ({before[k]!r} -> {now[k]!r})" for k in keys if before[k] != now[k]]
        defaults = self.defaults or {}
        new = sorted(k for k in now.keys() - before.keys() - set(RESULT_NEUTRAL_KEYS)
                     if k in defaults and defaults[k] != now[k])
        return changed + [f"{k} (new key, default {defaults.get(k)!r} -> {now[k]!r})" for k in new]

    def shell(self) -> str:
        """The command as one shell line that reproduces this run alone."""
        cwd = os.getcwd()
        # The interpreter and the script, relative when they lie under the current directory.
        head = [os.path.relpath(a) if os.path.isabs(a) and os.path.commonpath([a, cwd]) == cwd else a
                for a in self.command[:2]]
        return shlex.join(head + self.command[2:])


def split_config_string(config: str) -> tuple[str, str | None]:
    """`configs/x.py:a=1,smoke` -> ("configs/x.py", "a=1,smoke"); no colon -> (path, None)."""
    path, sep, arg = config.partition(":")
    return path, (arg if sep else None)


def load_module(path: str) -> ModuleType:
    """Imports a config module from its file path (as ml_collections' config flag does)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    name = "xcs_config_" + re.sub(r"\W", "_", os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_name(overrides: dict[str, Any]) -> str:
    """A short, filesystem-safe name that depends only on the overrides (not on their order).

    A readable slug of the values (`sparse-rigl-fan_in32`, strings as themselves, numbers and
    booleans after their key's last part; the items of an `arg` variant string likewise), kept to
    MAX_SLUG characters (whole parts), then `-` and 8 hex digits of a hash of every override: two different
    override sets never share a name, however long. No overrides: "base".
    """
    if not overrides:
        return "base"
    keys = sorted(overrides, key=lambda k: (k != "arg", k))
    text = ",".join(f"{k}={_format(overrides[k])}" for k in keys)
    parts = []
    for k in keys:
        if k == "arg":
            for item in str(overrides[k]).split(","):
                key, sep, value = item.partition("=")
                parts.append(_slug_part(key, value) if sep else item)
        else:
            parts.append(_slug_part(k, overrides[k]))
    slug = ""
    for part in (re.sub(r"[^A-Za-z0-9._+]+", "_", p).strip("_.") for p in parts):
        if part and len(slug) + len(part) + 1 <= MAX_SLUG:  # whole parts only; the hash tells the rest
            slug = f"{slug}-{part}" if slug else part
    slug = slug or "run"
    return f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def _slug_part(key: str, value: Any) -> str:
    """`sparse` for a string value; `fan_in32` for a number (or a string that reads as one); `biastrue`."""
    text = _format(value) if not isinstance(value, str) else value
    numeric = not isinstance(value, str) or re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", value) is not None
    return f"{key.rsplit('.', 1)[-1]}{text}" if numeric else text


def _format(value: Any) -> str:
    """A value as `--config.KEY=VALUE` text that ml_collections parses back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"sweep override value {value!r}: only bool, int, float and str values can be passed")


def collect(module: ModuleType, arg: str | None, function: str = "sweep") -> list[dict[str, Any]]:
    """Calls the module's `sweep(add, arg)` and returns the overrides of each `add` call."""
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"{module.__file__} has no `{function}(add, arg=None)` function")
    runs: list[dict[str, Any]] = []
    fn(lambda **overrides: runs.append(dict(overrides)), arg)
    if not runs:
        raise ValueError(f"{module.__file__}: `{function}` added no runs")
    return runs


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any], where: str) -> None:
    """Sets each dotted key, failing with the key's name if it is not declared or has another type."""
    for key, value in overrides.items():
        try:
            config_path.get_value(key, config)
        except (KeyError, AttributeError, IndexError, ValueError) as e:
            raise KeyError(f"{where}: unknown config key {key!r} (every key is declared in configs/default.py)") from e
        try:
            _format(value)
            config_path.set_value(key, config, value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: config key {key!r} cannot be set to {value!r}: {e}") from e


def plan(config: str, workdir: str, extra: dict[str, Any] | None = None, python: str = sys.executable,
         defaults: dict[str, Any] | None = None) -> list[Run]:
    """The runs of a sweep, each validated by building its config with all overrides applied.

    `extra` are overrides given on the command line beside `--sweep`; they apply to every run and
    do not enter run names. `defaults`: configs/default.py's config as a dict (Run.changed_keys).
    """
    flat_defaults = None if defaults is None else flatten(json.loads(json.dumps(defaults)))  # as config.json has them
    path, base_arg = split_config_string(config)
    module = load_module(path)
    runs, seen = [], {}
    for overrides in collect(module, base_arg):
        arg = overrides.pop("arg", base_arg)
        name = run_name({**({"arg": arg} if arg != base_arg else {}), **overrides})
        where = f"sweep run {name!r} of {config}"
        if name in seen:
            raise ValueError(f"{where}: added twice (same overrides)")
        seen[name] = True
        run_config = module.get_config(arg)
        all_overrides = {**overrides, **(extra or {})}
        apply_overrides(run_config, all_overrides, where)
        sub = os.path.join(workdir, name)
        config_arg = f"--config={path}" + (f":{arg}" if arg is not None else "")
        command = [python, "-m", "xcs.cli", config_arg, f"--workdir={sub}"]
        command += [f"--config.{k}={_format(v)}" for k, v in all_overrides.items()]
        runs.append(Run(name, sub, command, dict(overrides, **({"arg": arg} if arg != base_arg else {})),
                        config=run_config.to_dict(), defaults=flat_defaults))
    return runs


def execute(runs: list[Run], jobs: int = 1, echo: Callable[[str], None] = print, poll_s: float = 0.2,
            launcher: str = "local", launcher_params: dict[str, Any] | None = None,
            submitit_folder: str | None = None) -> list[Run]:
    """Runs every unfinished run, `jobs` at a time; a failure is recorded and the others go on.

    `launcher`: "local" (subprocesses here), "slurm" or "submitit_local" (submitit jobs, their
    own logs in `submitit_folder`); each run's output goes to its `launch.log` either way.
    """
    if jobs < 1:
        raise ValueError(f"--jobs={jobs}: must be at least 1")
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher={launcher!r}: one of {', '.join(LAUNCHERS)}")
    queue = []
    for run in runs:
        changed = run.changed_keys()
        if changed:
            echo(f"[warning] {run.name}: its earlier config.json differs from this sweep's in {len(changed)} "
                 f"key(s): {', '.join(changed[:8])}{' ...' if len(changed) > 8 else ''}; " + (
                     f"the run is reused as it is: delete {run.workdir} to run it afresh" if run.done else
                     f"the run will refuse its workdir (it belongs to the earlier config): move or delete "
                     f"{run.workdir} to run it afresh"))
        if run.done:
            run.status = "skipped"
            echo(f"[skip] {run.name}: finished before ({run.workdir}/results.json)")
        else:
            queue.append(run)
    start = launchers.starter(launcher, launcher_params or {}, submitit_folder or os.path.join("runs", "submitit"))
    running: list[tuple[Run, Any, float]] = []

    def on_signal(signum: int, frame: Any) -> None:
        raise SweepInterrupted(signum)

    # SIGTERM (a scheduler stopping the sweep) and SIGINT (Ctrl-C) go to every running run, which saves a
    # checkpoint and stops (its status "interrupted"); the sweep then ends, leaving no process behind.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        from xcs.train.preemption import pending

        if pending() is not None:  # came while the sweep was planned (the command line notes signals)
            raise SweepInterrupted(pending())
        while queue or running:
            while queue and len(running) < jobs:
                run = queue.pop(0)
                os.makedirs(run.workdir, exist_ok=True)
                with open(run.log, "a") as log:
                    log.write(f"$ {run.shell()}\n")
                echo(f"[start] {run.name}: {run.shell()}")
                running.append((run, start(run.command, run.log), time.perf_counter()))
            time.sleep(poll_s)
            for item in list(running):
                run, handle, t0 = item
                returncode = handle.poll()
                if returncode is None:
                    continue
                running.remove(item)
                run.seconds, run.returncode = time.perf_counter() - t0, returncode
                run.status = "ran" if returncode == 0 and run.done else "failed"
                tail = "" if run.status == "ran" else f" (exit {returncode}; log: {run.log}{handle.where()})"
                echo(f"[{run.status}] {run.name} in {run.seconds:.1f}s{tail}")
    except BaseException as e:
        signum = e.signum if isinstance(e, SweepInterrupted) else signal.SIGTERM
        for s in previous:  # a second signal while the runs stop is not raised in the middle of it
            signal.signal(s, signal.SIG_IGN)
        for run, handle, t0 in running:  # an interrupted sweep leaves no orphans
            handle.stop(signum)
            run.status, run.seconds = "interrupted", time.perf_counter() - t0
            echo(f"[interrupted] {run.name} (log: {run.log})")
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return runs


class SweepInterrupted(Exception):
    """The sweep got SIGTERM or SIGINT; its runs were told too and have stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"sweep interrupted by {signal.Signals(signum).name}")


def summary(runs: Sequence[Run]) -> str:
    counts = {s: sum(r.status == s for r in runs) for s in ("ran", "skipped", "failed", "interrupted")}
    lines = [f"{len(runs)} runs: {counts['ran']} ran, {counts['skipped']} skipped (finished before), "
             f"{counts['failed']} failed" + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""),
             "", "| run | status | seconds | log |", "|---|---|---:|---|"]
    for r in runs:
        log = r.log if r.status == "failed" else ""
        lines.append(f"| {r.name} | {r.status} | {r.seconds:.1f} | {log} |")
    return "\n".join(lines)


def write_record(path: str, config: str, runs: Sequence[Run]) -> None:
    """`sweep.json`: the config string (the report finds the table module from it) and every run."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    record = {"config": config, "runs": [
        {"name": r.name, "workdir": r.workdir, "overrides": r.overrides, "command": r.shell(), "status": r.status,
         "seconds": r.seconds, "returncode": r.returncode, "log": r.log} for r in runs]}
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def write_index(workdir: str, runs: Sequence[Run]) -> str:
    """`index.json` in the sweep's workdir: {run name: its overrides}, merged with what is there already
    (several sweeps may share a workdir). Returns its path."""
    path = os.path.join(workdir, INDEX)
    index: dict[str, Any] = {}
    if os.path.exists(path):
        with open(path) as f:
            index = json.load(f)
    index.update({r.name: r.overrides for r in runs})
    os.makedirs(workdir, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(dict(sorted(index.items())), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def run_all(runs: list[Run], config: str, workdir: str, jobs: int, dry_run: bool, record: str = "sweep.json",
            launcher: str = "local", launcher_params: dict[str, Any] | None = None) -> int:
    """Lists (dry run) or executes the runs, prints a summary, writes the record; 1 if any failed."""
    if dry_run:
        for r in runs:
            changed = r.changed_keys()
            state = "finished" if r.done else "to run"
            state += f" (config changed: {len(changed)} key(s))" if changed else ""
            print(f"{r.name}\t{state}\t{r.shell()}")
        print(f"{len(runs)} runs ({sum(r.done for r in runs)} finished) in {workdir}")
        return 0
    write_index(workdir, runs)
    try:
        execute(runs, jobs, launcher=launcher, launcher_params=launcher_params,
                submitit_folder=os.path.join(workdir, "submitit"))
    except SweepInterrupted as e:
        write_record(os.path.join(workdir, record), config, runs)
        print(summary(runs))
        print(f"{e}: the runs it had started saved a checkpoint and stopped; the same command resumes them")
        return 128 + e.signum
    write_record(os.path.join(workdir, record), config, runs)
    print(summary(runs))
    print(f"record: {os.path.join(workdir, record)}")
    return int(any(r.status == "failed" for r in runs))


def run_sweep(config: str, workdir: str, jobs: int = 1, dry_run: bool = False,
              extra: dict[str, Any] | None = None, defaults: dict[str, Any] | None = None,
              launcher: str = "local", launcher_params: dict[str, Any] | None = None) -> int:
    """`xcs-train --sweep`: plans (validating every run) and runs the sweep; the exit status."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher={launcher!r}: one of {', '.join(LAUNCHERS)}")
    runs = plan(config, workdir, extra, defaults=defaults)
    return run_all(runs, config, workdir, jobs, dry_run, launcher=launcher, launcher_params=launcher_params)


__all__ = ["Run", "plan", "execute", "run_sweep", "run_all", "run_name", "load_module", "collect",
           "apply_overrides", "split_config_string", "summary", "write_index", "parse_launcher_params", "LAUNCHERS"]
