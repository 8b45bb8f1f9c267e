"""Helpers shared by config modules: `key=value,...` variant strings and locking."""

from __future__ import annotations

from typing import Any

import ml_collections

# Keys that only change what a run prints, never its results.
CONSOLE_ONLY_KEYS = ("train.progress",)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1} (a config.json's nesting as dotted keys)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_arg(arg: str | None, defaults: dict[str, Any]) -> ml_collections.ConfigDict:
    """Parses `configs/x.py:a=1,b=foo,smoke` into a ConfigDict of the declared variant keys.

    A bare word (`smoke`) sets a boolean key to True. Values take the type of their default,
    so `smoke=0` is False and `width=512` an int. An undeclared key fails with its name.
    """
    out = ml_collections.ConfigDict(dict(defaults))
    for part in filter(None, (p.strip() for p in (arg or "").split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if key not in defaults:
            raise KeyError(f"unknown config variant key {key!r} in {arg!r}; known: {sorted(defaults)}")
        default = defaults[key]
        if not sep:
            if not isinstance(default, bool):
                raise ValueError(f"config variant {key!r} needs a value ({key}=...)")
            out[key] = True
        elif isinstance(default, bool):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"config variant {key}={value!r} is not a boolean")
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = type(default)(value)
    return out
