"""Dynamic sparse training of the classifier: fixed fan-in head, SET / RigL, intermediate layer, aux.

    .venv/bin/python launch.py --config=dst:smoke --workdir=runs/dst_smoke              # ~20 s
    .venv/bin/python launch.py --config=dst:data=wordnet_hypernyms,intermediate=4096,aux=1024 --workdir=runs/dst

Variants (`--config=dst:key=value,...`):
  data=synthetic|NAME   as in configs/xmc.py
  head=sparse           sparse (fixed fan-in) | dense (the reference)
  algorithm=rigl        static | set | rigl (config.sparsity.algorithm)
  fan_in=32             inputs per label (config.sparsity.fan_in)
  intermediate=N        width of the intermediate layer before the head (default 0; 64 with smoke)
  aux=N                 label clusters of the auxiliary objective (default 0; 16 with smoke)
  smoke                 a run of seconds (the tests run it): RigL + intermediate layer + aux
"""

from __future__ import annotations

import ml_collections

from configs import xmc
from xcs.config import config_from_arg


def build(*, data: str = "synthetic", head: str = "sparse", algorithm: str = "rigl", fan_in: int = 32,
          intermediate: int | None = None, aux: int | None = None, smoke: bool = False) -> ml_collections.ConfigDict:
    """`intermediate` and `aux` left at None take 0, or the smoke run's 64 and 16."""
    config = xmc.build(data=data, smoke=smoke)
    config.model.head.name = head
    config.sparsity.algorithm = algorithm
    config.sparsity.fan_in = min(fan_in, 8) if smoke else fan_in
    config.model.head.intermediate = intermediate if intermediate is not None else (64 if smoke else 0)
    config.aux.clusters = aux if aux is not None else (16 if smoke else 0)
    if smoke:
        config.sparsity.rewire_interval = 5
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return config_from_arg(build, arg)
