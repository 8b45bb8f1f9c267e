"""xcs: a JAX/Flax framework for extreme output spaces.

`xcs.load(workdir_or_export)` returns a predictor of a trained model (xcs.predict; docs/predict.md). It is
imported on first use, so `import xcs` stays cheap (no JAX).
"""

from __future__ import annotations

__all__ = ["load"]


def __getattr__(name: str):
    if name == "load":
        from xcs.predict.predictor import load

        return load
    raise AttributeError(f"module 'xcs' has no attribute {name!r}")
