"""Dynamic sparse training of the classifier: fixed fan-in head, SET / RigL, intermediate layer, aux.

Variants (`--config=configs/dst.py:key=value,...`):
  data=synthetic|NAME   as in configs/xmc.py
  head=sparse           sparse (fixed fan-in) | dense (the reference)
  algorithm=rigl        static | set | rigl (config.sparsity.algorithm)
  fan_in=32             inputs per label (config.sparsity.fan_in)
  intermediate=0        width of the intermediate layer before the head; 0 = none
  aux=0                 label clusters of the auxiliary objective; 0 = none
  smoke                 a run of seconds (the tests run it): RigL + intermediate layer + aux
"""

from __future__ import annotations

import ml_collections

from configs import xmc
from xcs.config import parse_arg

VARIANTS = {"data": "synthetic", "head": "sparse", "algorithm": "rigl", "fan_in": 32, "intermediate": 0, "aux": 0,
            "smoke": False}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    config = xmc.get_config(f"data={v.data}" + (",smoke" if v.smoke else ""))
    config.model.head.name = v.head
    config.sparsity.algorithm = v.algorithm
    config.sparsity.fan_in = v.fan_in
    config.model.head.intermediate = v.intermediate
    config.aux.clusters = v.aux
    if v.smoke:
        config.sparsity.fan_in = min(v.fan_in, 8)
        config.sparsity.rewire_interval = 5
        if "intermediate" not in (arg or ""):
            config.model.head.intermediate = 64
        if "aux" not in (arg or ""):
            config.aux.clusters = 16
    return config
