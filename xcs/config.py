"""Helpers shared by config modules: `key=value,...` variant strings.

A config module builds its config in a typed function, `build(*, data: str = ..., smoke: bool =
False, ...) -> ConfigDict`, which other config modules call directly; `get_config(arg)` only turns
the command line's variant string into that call (`config_from_arg(build, arg)`). A parameter whose
default is None lets `build` tell a key the user gave from one left at its default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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


_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def _variant_type(parameter: inspect.Parameter) -> type:
    """The type a variant value is parsed as: the default's, or the first of int/float/bool/str in the annotation."""
    if parameter.default is not None and parameter.default is not inspect.Parameter.empty:
        return type(parameter.default)
    annotation = str(parameter.annotation)
    for name in annotation.replace("|", " ").replace(",", " ").split():
        if name in _TYPES:
            return _TYPES[name]
    raise TypeError(f"variant parameter {parameter.name!r} needs a default or an int/float/bool/str annotation")


def given_keys(arg: str | None) -> frozenset[str]:
    """The keys a variant string sets (`smoke,data=x` -> {'smoke', 'data'})."""
    return frozenset(p.partition("=")[0].strip() for p in (arg or "").split(",") if p.strip())


def config_from_arg(build: Callable[..., ml_collections.ConfigDict], arg: str | None) -> ml_collections.ConfigDict:
    """build(**the keys given in `arg`), each parsed as its parameter's type; the others keep build's defaults."""
    parameters = inspect.signature(build).parameters
    kinds = {name: _variant_type(p) for name, p in parameters.items()}
    typed = {name: (False if kind is bool else kind()) for name, kind in kinds.items()}
    values = parse_arg(arg, typed)
    return build(**{key: values[key] for key in given_keys(arg)})
