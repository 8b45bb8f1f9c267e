"""Finding runs under a directory and grouping those that differ only by seed."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from xcs.config import CONSOLE_ONLY_KEYS, flatten

# Keys that never make two runs different experiments: the seed (aggregated over) and console output.
IGNORED = ("seed", *CONSOLE_ONLY_KEYS)
MISSING = "—"
TRAINING_TIME_KEYS = ("train_seconds", "seconds_per_epoch")


@dataclasses.dataclass
class RunResult:
    workdir: str  # relative to the report's directory
    results: dict[str, Any]
    config: dict[str, Any]  # config.json beside results.json (nested), {} if absent

    @property
    def flat(self) -> dict[str, Any]:
        return flatten(self.config)


def lookup(tree: dict[str, Any], path: str) -> Any:
    """A dotted path into nested dicts; None if any part is missing."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def metric(results: dict[str, Any], key: str) -> float | None:
    """A column's value: a test metric (`P@1`) or a dotted path into results.json (`peak_rss_mb`)."""
    if key in TRAINING_TIME_KEYS and results.get("resumed_from_step", 0) >= results.get("steps", 1):
        return None  # it only evaluated a model trained before (its checkpoints copied in): no training time
    test = results.get("test", {})
    value = test[key] if key in test else lookup(results, key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def find_runs(directory: str) -> list[RunResult]:
    """Every results.json under `directory` (sorted by path), with the config.json beside it."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"report: {directory!r} is not a directory")
    runs = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        dirs[:] = [d for d in dirs if d not in ("checkpoints", "tensorboard", "model")]
        if "results.json" not in files:
            continue
        with open(os.path.join(root, "results.json")) as f:
            results = json.load(f)
        config = {}
        if os.path.exists(os.path.join(root, "config.json")):
            with open(os.path.join(root, "config.json")) as f:
                config = json.load(f)
        runs.append(RunResult(os.path.relpath(root, directory), results, config))
    if not runs:
        raise FileNotFoundError(f"report: no results.json under {directory!r}")
    return sorted(runs, key=lambda r: r.workdir)


def varying_keys(configs: Iterable[dict[str, Any]], ignored: Iterable[str] = IGNORED) -> list[str]:
    """Flat config keys whose value is not the same in all configs (a key missing in some varies)."""
    flats = [flatten(c) for c in configs]
    keys = sorted({k for f in flats for k in f} - set(ignored))
    return [k for k in keys if len({json.dumps(f.get(k, MISSING), sort_keys=True) for f in flats}) > 1]


def _fmt_value(v: Any) -> str:
    return MISSING if v is None else str(v)


def group(runs: list[RunResult], label: Callable[[dict[str, Any]], str] | list[str] | None,
          ignored: Iterable[str] = IGNORED) -> list[tuple[str, list[RunResult]]]:
    """Groups runs whose configs differ only in ignored keys (the seed) and labels each group.

    `label` is a function of the (nested) config, a list of dotted config paths ("path=value"), or
    None: the keys that vary between groups. Two groups with the same label get the keys that
    tell them apart appended, so rows never silently merge different experiments.
    """
    ignored = tuple(ignored)
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        flat = {k: v for k, v in run.flat.items() if k not in ignored}
        groups.setdefault(json.dumps(flat, sort_keys=True), []).append(run)
    members = list(groups.values())
    configs = [g[0].config for g in members]
    if callable(label):
        labels = [str(label(c)) for c in configs]
    else:
        paths = label if label is not None else varying_keys(configs, ignored)
        labels = [", ".join(f"{p}={_fmt_value(lookup(c, p))}" for p in paths) for c in configs]
        if not paths:
            labels = [g[0].workdir if len(members) > 1 else (lookup(g[0].results, "data.name") or "run")
                      for g in members]
    for name in set(labels):
        same = [i for i, lab in enumerate(labels) if lab == name]
        if len(same) > 1:
            keys = varying_keys([configs[i] for i in same], ignored)
            for i in same:
                labels[i] += " (" + ", ".join(f"{k}={_fmt_value(lookup(configs[i], k))}" for k in keys) + ")"
    return sorted(zip(labels, members), key=lambda x: natural_key(x[0]))


def natural_key(text: str) -> list[tuple[int, float, str]]:
    """Sorts "d=64" before "d=256" (numbers by value, the rest as text)."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
    return [(0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)]
