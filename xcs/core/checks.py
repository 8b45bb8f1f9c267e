"""Small helpers the config checks of every layer share: a rule refused as one ConfigError line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xcs.core.errors import ConfigError


def get_key(config: Any, key: str) -> Any:
    """config['a.b.c'] for a dotted key."""
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def require(holds: bool, config: Any, key: str, allowed: str) -> None:
    """Refuses config.<key> with `allowed` (what it must be) unless `holds`."""
    if not holds:
        raise ConfigError(key, get_key(config, key), allowed)


def choice(config: Any, key: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    value = get_key(config, key)
    if value not in allowed:
        raise ConfigError(key, value, f"expected one of {', '.join(map(str, allowed))}")
