"""The workdir's small JSON files: written atomically, read leniently where a broken one must not block a run."""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging


def write_json(path: str, obj: Any) -> None:
    """Writes `obj` as JSON atomically (a temporary file renamed over `path`)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json_dict(path: str, if_broken: str) -> dict[str, Any]:
    """The JSON object in `path`; {} when it is missing, or unreadable (warned, saying `if_broken`)."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            record = json.load(f)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return record
    except (OSError, ValueError) as e:
        logging.warning("%s is unreadable (%s): %s", path, e, if_broken)
        return {}
