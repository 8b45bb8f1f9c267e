"""Finding a submodule of a Flax model and reading or replacing its variables by path."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn

Path = tuple[str, ...]


def find_module(module: nn.Module, cls: type, path: Path = ()) -> tuple[Any, Path] | None:
    """The first submodule of type `cls` and its variable path (the field names that lead to it)."""
    if isinstance(module, cls):
        return module, path
    for field in dataclasses.fields(module):
        child = getattr(module, field.name, None)
        if isinstance(child, nn.Module) and field.name not in ("parent",):
            found = find_module(child, cls, path + (field.name,))
            if found:
                return found
    return None


def get_path(tree: Any, path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def set_path(tree: Any, path: Path, value: Any) -> Any:
    """A copy of the nested dict `tree` with tree[path] = value (the other leaves shared)."""
    if not path:
        return value
    return {**tree, path[0]: set_path(tree[path[0]], path[1:], value)}


def nest(path: Path, value: Any) -> Any:
    return value if not path else {path[0]: nest(path[1:], value)}
