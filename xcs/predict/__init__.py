"""Prediction on new inputs: `xcs.load(workdir_or_export).predict(inputs, k)` and `python -m xcs.predict`.

See docs/predict.md. The command line is xcs/predict/__main__.py (console script `xcs-predict`).
"""

from __future__ import annotations

from xcs.predict.predictor import Predictor, load

__all__ = ["Predictor", "load"]
