"""Where a `--config=` argument's file is: a path, or the name of a config bundled with xcs.

    xmc:smoke                      -> <configs package>/xmc.py:smoke
    tables/dst:rows=bar            -> <configs package>/tables/dst.py:rows=bar   (also tables.dst)
    configs/xmc.py:data=NAME       -> as given if it exists here, else the bundled configs/xmc.py
    /abs/or/relative/own_config.py -> as given

The bundled configs are the `configs` package installed beside `xcs` (the repository's configs/
in a checkout), so a named config works from any working directory.
"""

from __future__ import annotations

import os
import re

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds xcs/ and (normally) configs/


class ConfigFileError(FileNotFoundError):
    """A config argument that names no file and no bundled config (one line for the user)."""


def configs_dir() -> str:
    """The directory of the bundled `configs` package (found without importing it)."""
    import importlib.util

    here = os.path.join(PACKAGE_ROOT, "configs")
    if os.path.isfile(os.path.join(here, "__init__.py")):
        return here
    spec = importlib.util.find_spec("configs")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigFileError("the bundled configs package is not installed (is xcs installed?)")
    return list(spec.submodule_search_locations)[0]


def bundled_names() -> list[str]:
    """Names of the bundled configs: `xmc`, `dst`, ..., `tables/dst`, ..."""
    root, names = configs_dir(), []
    for sub in ("", "tables"):
        for f in sorted(os.listdir(os.path.join(root, sub))):
            if f.endswith(".py") and f != "__init__.py":
                names.append(f"{sub}/{f[:-3]}" if sub else f[:-3])
    return names


def resolve(argument: str) -> str:
    """The `--config` argument with its file part made a path that exists; the `:variant` kept as is.

    Raises ConfigFileError (one line, naming the argument and the bundled names) if there is none.
    """
    path, sep, variant = argument.partition(":")
    found = _find(path)
    if found is None:
        names = ", ".join(bundled_names())
        raise ConfigFileError(f"config file {path!r} not found (from {os.getcwd()}), and it is not a bundled "
                              f"config name; bundled: {names}")
    return found + sep + variant


def _find(path: str) -> str | None:
    if os.path.isfile(path):
        return path
    if not path:
        return None
    root = configs_dir()
    if re.fullmatch(r"[A-Za-z_]\w*([./][A-Za-z_]\w*)?", path) and not path.endswith(".py"):  # a name: xmc, tables.dst
        candidate = os.path.join(root, *re.split(r"[./]", path)) + ".py"
        return candidate if os.path.isfile(candidate) else None
    parts = os.path.normpath(path).split(os.sep)
    if not os.path.isabs(path) and parts[0] == "configs":  # the repository's configs/... path, from elsewhere
        candidate = os.path.join(root, *parts[1:])
        return candidate if os.path.isfile(candidate) else None
    return None
