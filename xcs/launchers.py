"""Launchers of a sweep's runs: how one command is started, polled and stopped, here or through submitit.

  local           a subprocess here in its own session, its output appended to the run's launch.log
  slurm           a SLURM job through submitit (its launch.log written on the node)
  submitit_local  the same submitit path through submitit's local executor, on this machine

Each handle has poll() -> exit status or None, where() -> where its own logs are, stop(signum).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the directory holding xcs/
LAUNCHERS = ("local", "slurm", "submitit_local")


def _env() -> dict[str, str]:
    """This environment with xcs importable (PACKAGE_ROOT first on PYTHONPATH), for `python -m xcs.cli`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    return env


class LocalRun:
    """A run as a subprocess here, its output appended to its launch.log."""

    def __init__(self, command: list[str], log: str):
        self.log = open(log, "a")
        # Its own session: a terminal's Ctrl-C reaches the sweep only, which passes it on once (stop).
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=_env(), start_new_session=True)

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self.log.close()
        return code

    def where(self) -> str:
        return ""

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Passes the signal on and waits for the run to save its checkpoint and end (killed after 10 min)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class SubmititRun:
    """A run as a submitit job (SLURM or submitit's local executor); it appends to launch.log itself."""

    def __init__(self, executor: Any, command: list[str], log: str):
        import submitit

        # `sh -c` appends the run's output to its launch.log on the node and prints its exit status (the
        # job's result); the job runs from this directory.
        command = ["/bin/sh", "-c", '"$@" >> "$0" 2>&1; echo "$?"', os.path.abspath(log), *command]
        self.job = executor.submit(submitit.helpers.CommandFunction(command, cwd=os.getcwd(), env=_env()))

    def poll(self) -> int | None:
        if not self.job.done():
            return None
        if self.job.exception() is not None:  # the job itself failed (e.g. cancelled, out of time)
            return -1
        return int(self.job.result().strip().splitlines()[-1])

    def where(self) -> str:
        return f"; submitit job {self.job.job_id}: {self.job.paths.stderr}"

    def stop(self, signum: int = signal.SIGTERM) -> None:
        self.job.cancel(check=False)  # scancel: SLURM sends the job SIGTERM, then SIGKILL after its KillWait


def starter(launcher: str, params: dict[str, Any], folder: str) -> Callable[[list[str], str], LocalRun | SubmititRun]:
    """`start(command, log)` of `launcher`: local subprocesses, or submitit jobs whose own logs go to `folder`."""
    if launcher == "local":
        return LocalRun
    import submitit

    cluster = "slurm" if launcher == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**{"timeout_min": 24 * 60, "name": "xcs", **params})
    return lambda command, log: SubmititRun(executor, command, log)


def parse_launcher_params(text: str) -> dict[str, Any]:
    """`slurm_partition=gpu,timeout_min=120` -> {"slurm_partition": "gpu", "timeout_min": 120} (ints, floats,
    true/false as such; the rest as strings)."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--launcher_params: {item!r} is not key=value")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out
