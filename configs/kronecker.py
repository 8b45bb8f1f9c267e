"""Classification on Kronecker-structured inputs x = u ⊗ v with the primal Kronecker layer, sync or async SGD.

    python launch.py --config=configs/kronecker.py --workdir=runs/kron
    python launch.py --config=configs/kronecker.py:mode=async,tau=8,workers=16 --workdir=runs/kron_async

The encoder is h = σ_b(w_rᵀx) [B, m] computed from the factors (xcs.kronecker.layer, never
forming x), followed by a dense head over the classes of the planted teacher (xcs.data.kronecker).

The paper's network itself (fixed a, one output, regression, plain SGD; dense / primal /
structured representations) trains with its own trainer on the `paper` variant:

    python -m experiments.kronecker_train --config=configs/kronecker.py:paper --reprs=structured,primal,dense
    python -m experiments.kronecker_train --config=configs/kronecker.py:paper --taus=0,2,8,32 --workers=1,4,16

(launch.py refuses `paper`: its targets are regression targets.)

Variants (`:key=value,...`):
  d1=N, d2=N          factor dimensions (d = d1·d2; default 32×32)
  mode=sync|async     train.mode; async uses tau, workers, delay (config.async_)
  tau=N, workers=N    max staleness τ and simulated workers W (defaults 2, 4)
  delay=fixed|random  delay distribution
  smoke               a run that takes seconds (tests run it end to end)
  paper               the paper's network for experiments.kronecker_train: task=regression, m=256,
                      b=shift, plain SGD at constant lr, steps (with smoke: seconds)
  shift=F, lr=F, steps=N   b, learning rate and steps of `paper` (defaults 1.0, 10.0, 2000)
"""

from __future__ import annotations

import types

import ml_collections

from configs import default
from xcs.config import config_from_arg


def build(*, d1: int = 32, d2: int = 32, mode: str = "sync", tau: int = 2, workers: int = 4, delay: str = "fixed",
          smoke: bool = False, paper: bool = False, shift: float = 1.0, lr: float = 10.0,
          steps: int = 2000) -> ml_collections.ConfigDict:
    v = types.SimpleNamespace(d1=d1, d2=d2, mode=mode, tau=tau, workers=workers, delay=delay, smoke=smoke,
                              paper=paper, shift=shift, lr=lr, steps=steps)
    config = default.get_config()
    config.data.source = "kronecker"
    config.data.name = "kronecker"
    k = config.data.kronecker
    k.dims = (v.d1, v.d2)
    k.num_train, k.num_test, k.num_classes, k.teacher_rank = 8000, 2000, 10, 4
    config.model.encoder.name = "kronecker"
    config.model.encoder.width = 256
    config.kronecker.shift = 0.0
    config.train.epochs = 10.0
    config.train.batch_size = 128
    config.train.log_every = 50
    # The inputs have unit norm and W(0) unit-variance entries: a larger step than the XMC default.
    config.train.optimizer.encoder.learning_rate = 3e-3
    config.train.optimizer.head.learning_rate = 3e-3
    config.train.mode = v.mode
    config.async_.max_staleness = v.tau
    config.async_.workers = v.workers
    config.async_.delay = v.delay
    if v.paper:
        _paper(config, v)
    elif v.smoke:
        k.num_train, k.num_test = 600, 200
        k.dims = (min(v.d1, 8), min(v.d2, 8))
        config.model.encoder.width = 32
        config.train.steps = 30
        config.train.epochs = 0.0
        config.train.warmup_steps = 5
        config.train.batch_size = 32
        config.train.log_every = 10
        config.train.checkpoint_every = 15
        config.eval.batch_size = 100
    return config


def _paper(config: ml_collections.ConfigDict, v: types.SimpleNamespace) -> None:
    """The settings of experiments.kronecker_train: regression target, plain constant-rate SGD on W only."""
    k = config.data.kronecker
    k.task, k.noise, k.num_train, k.num_test = "regression", 0.1, 2000, 500
    config.model.encoder.width = 256
    config.kronecker.shift = v.shift
    config.train.steps, config.train.epochs, config.train.batch_size = v.steps, 0.0, 64
    config.train.optimizer.encoder.update(name="sgd", momentum=0.0, learning_rate=v.lr)
    config.train.schedule, config.train.warmup_steps = "constant", 0
    if v.smoke:
        k.num_train, k.num_test, k.dims = 200, 50, (min(v.d1, 6), min(v.d2, 5))
        config.model.encoder.width, config.train.batch_size = 32, 16
        config.train.steps = min(v.steps, 60)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return config_from_arg(build, arg)
