"""train_and_evaluate: the one training loop. It owns time (steps, logging, checkpoints, eval)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from xcs.data.batching import Batcher, EpochIterator
from xcs.data.dataset import Dataset, load_dataset, validation_rows
from xcs.losses import AUTO, get_loss
from xcs.metrics import inverse_propensity
from xcs.parallel import mesh as mesh_lib
from xcs.registry import build_model, head_test_metrics, head_update, periodic_actions
from xcs.system import machine_info, peak_rss_mb
from xcs.train import knn, names
from xcs.train import workdir as workdir_lib
from xcs.train.artifacts import save_for_prediction
from xcs.train.async_step import make_step, wrap_optimizer
from xcs.train.auto import resolve_auto, split_top_label_share
from xcs.train.checkpoint import Checkpointer, record_train_seconds, train_seconds_at
from xcs.train.evaluate import evaluate
from xcs.train.jsonio import write_json
from xcs.train.optim import make_optimizer
from xcs.train.preemption import Interrupted, Preemption, stop_if_pending
from xcs.train.sharded import create_sharded_state, shard_predict, shard_train_step
from xcs.train.sparse_table import SparseTable, max_batch_rows, optimizer_init
from xcs.train.state import create_state, make_predict, variables
from xcs.train.writers import MetricWriter, Progress
from xcs.validate import validate


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or gradient; the last good checkpoint is kept."""


def total_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
    if config.train.steps > 0:
        return config.train.steps
    return max(1, math.ceil(config.train.epochs * steps_per_epoch))


def _check_finite(step: int, metrics: dict[str, float], checkpoint_step: int | None) -> None:
    bad = [k for k in ("loss", "grad_norm") if not math.isfinite(metrics[k])]
    if bad:
        kept = f"last good checkpoint: step {checkpoint_step}" if checkpoint_step else "no checkpoint was written"
        raise NonFiniteLossError(
            f"non-finite {' and '.join(bad)} at step {step} ({', '.join(f'{k}={metrics[k]}' for k in bad)}); "
            f"stopping ({kept})")


def _to_float(metrics: dict[str, jax.Array]) -> dict[str, float]:
    return {k: float(v) for k, v in jax.device_get(metrics).items()}


def _head_state_mb(state: Any) -> float:
    """MiB of the head's parameters, optimizer state and non-trainable state (e.g. a sparse head's indices)."""
    leaves = jax.tree_util.tree_leaves_with_path((state.params, state.opt_state, state.model_state))
    return sum(x.size * x.dtype.itemsize for path, x in leaves
               if hasattr(x, "dtype") and any(getattr(p, "key", None) == "head" for p in path)) / 2**20


def _sync(name: str) -> None:
    """A barrier of every process of a multi-process run (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, overwrite: str | None = None,
                       ) -> dict[str, Any]:
    """Trains the model of `config`, evaluates it on the test split, and writes the run into `workdir`.

    The workdir belongs to one config (xcs/train/workdir.py): a workdir holding another config's run
    is refused (WorkdirError, naming the keys that differ) before anything is read or written, unless
    `overwrite` ("move" or "delete") starts over; a finished run of the same config is not trained
    again (its results.json's dict is returned with "finished_before": True). Otherwise the run resumes
    from the newest intact checkpoint in `workdir/checkpoints` if there is one, and ends with the same
    parameters and metrics as an uninterrupted one. SIGTERM/SIGINT save a checkpoint of the current step
    and raise Interrupted (xcs/train/preemption.py). Nothing is written before the config was validated
    and the data loaded. Returns results.json's dict.
    """
    validate(config)  # before anything is written or read
    if overwrite is not None and overwrite not in workdir_lib.OVERWRITE_CHOICES:
        raise workdir_lib.WorkdirError(f"--overwrite={overwrite!r}: one of {', '.join(workdir_lib.OVERWRITE_CHOICES)}")
    primary = jax.process_index() == 0
    config_dict = config.to_dict()
    if primary:
        workdir_lib.WorkdirLock(workdir).check_free()  # another process at work there: refused before any work
    if overwrite is None and workdir_lib.check(workdir, config_dict) == "finished":
        logging.info("the run in %s finished before: its results, nothing trained", workdir)
        return {**workdir_lib.read_results(workdir), "finished_before": True}
    t_start = time.perf_counter()

    data: Dataset = load_dataset(config.data, config.seed)  # a data error stops the run here, nothing written
    stop_if_pending()  # SIGTERM/SIGINT while the data loaded (the command line notes them): stop, nothing written
    lock = workdir_lib.WorkdirLock(workdir).acquire() if primary else None
    try:
        if primary:
            if overwrite is not None and workdir_lib.has_run(workdir):
                lock.release()  # our lock file goes with the run; the new workdir gets a new one
                workdir_lib.start_over(workdir, overwrite)
                lock.acquire()
            elif workdir_lib.check(workdir, config_dict) == "finished":  # again, under the lock
                return {**workdir_lib.read_results(workdir), "finished_before": True}
            workdir_lib.record_config(workdir, config_dict)
        _sync("xcs workdir ready")
        # Several processes (xcs.parallel.distributed) share the workdir's checkpoints (orbax writes each
        # process's shards); the other files are process 0's, the rest write theirs under process_<i>/.
        outdir = workdir if primary else os.path.join(workdir, f"process_{jax.process_index()}")
        os.makedirs(outdir, exist_ok=True)
        save_for_prediction(data, outdir)  # data.json, label names, tf-idf vectorizer: what xcs.predict reads
        with Preemption() as preemption:
            try:
                return _train(config, workdir, outdir, data, t_start, preemption)
            except Interrupted as e:
                if primary:
                    workdir_lib.write_status(workdir, "interrupted", step=e.step, signal=signal.Signals(e.signum).name)
                raise
            except NonFiniteLossError as e:
                if primary:
                    workdir_lib.write_status(workdir, "failed", error=str(e))
                raise
            except Exception as e:
                if primary:
                    with contextlib.suppress(OSError):
                        workdir_lib.write_status(workdir, "failed", error=f"{type(e).__name__}: {e}"[:500])
                raise
    finally:
        if lock is not None:
            lock.release()


def _resolve_loss(config: ml_collections.ConfigDict, data: Dataset) -> ml_collections.ConfigDict:
    """`config` with loss.name=auto resolved from the training labels (xcs.train.auto), the choice logged."""
    if config.loss.name != AUTO:
        return config
    share = split_top_label_share(data.train)
    resolved = resolve_auto(config, share)
    logging.info("loss auto: the most frequent label is on %.1f %% of the training points (auto_share %.2f): %s, "
                 "%g epochs, width %d, kNN neighbors %d", 100 * share, config.loss.auto_share, resolved.loss.name,
                 resolved.train.epochs, resolved.model.encoder.width, resolved.eval.knn.neighbors)
    return resolved


@jax.jit
def _finite(leaves: list[jax.Array]) -> jax.Array:
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))


def _all_finite(tree: Any) -> bool:
    """Whether every floating-point array of `tree` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    return bool(_finite(leaves)) if leaves else True


def _train(config: ml_collections.ConfigDict, workdir: str, outdir: str, data: Dataset, t_start: float,
           preemption: Preemption) -> dict[str, Any]:
    primary = jax.process_index() == 0
    if primary:
        workdir_lib.write_status(workdir, "running")
    config = _resolve_loss(config, data)
    buckets = config.data.text.length_buckets  # widths of token batches (texts read end to end)
    full_train, tune_batcher = data.train, None
    name_plan = names.plan(config, data)  # the label-name mix (xcs.train.names), None: off
    name_index, name_weights = name_plan or (None, ())
    if len(name_weights) > 1:  # μ is chosen on training points held out of training
        kept, held = validation_rows(full_train.num_points, config.eval.names.tune_fraction, config.seed,
                                     names.TUNE_STREAM)
        data = dataclasses.replace(data, train=full_train.take(kept))
        tune_batcher = Batcher(full_train.take(held), config.data.max_features, 0, buckets)
    train_batcher = Batcher(data.train, config.data.max_features, config.data.max_labels, buckets)
    test_batcher = Batcher(data.test, config.data.max_features, 0, buckets)
    iterator = EpochIterator(train_batcher, config.train.batch_size, config.seed, config.data.text.group_by_length)
    steps = total_steps(config, iterator.steps_per_epoch)
    truncation = {"train": train_batcher.truncation_report(), "test": test_batcher.truncation_report()}
    logging.info("data %s: %s", data.name, data.stats())
    for split, report in truncation.items():
        for kind, t in report.items():
            if t["rows"]:
                logging.warning("%s: %d points have more than %d %s; %d entries truncated",
                                split, t["rows"], t["width"], kind, t["entries"])

    mesh = mesh_lib.make_mesh(config.mesh)  # None: one device (config.mesh.shape=(1, 1))
    mesh_lib.check_config(config, data.num_labels, mesh)
    model = build_model(config, data.num_features, data.num_labels, data=data, workdir=workdir)
    loss_fn = get_loss(config.loss.name)
    tx, schedules = make_optimizer(config, steps)
    tx = wrap_optimizer(config, tx)  # train.mode=async: the optimizer state also keeps parameter snapshots
    key = jax.random.PRNGKey(config.seed)
    init_key, step_key = jax.random.split(key)
    example = iterator.batcher(iterator.rows_for_step(0))
    if mesh is None:
        state = create_state(model, tx, example, loss_fn, init_key, optimizer_init(config, tx))
    else:  # built shard by shard: a head too big for one device is never whole
        state, shardings = create_sharded_state(model, tx, example, loss_fn, init_key, mesh, config.mesh)
    num_params = sum(x.size for x in jax.tree.leaves(state.params))
    head_state_mb = _head_state_mb(state)

    checkpoint_dir = os.path.join(workdir, "checkpoints")
    checkpointer = Checkpointer(checkpoint_dir, config.train.keep_checkpoints)
    # The newest intact checkpoint (a damaged or partial newer one is reported and set aside).
    start, state = checkpointer.restore_latest(state)
    # Training time before this process: known when the checkpoint's time was recorded (checkpoints of
    # older versions have none); otherwise only this process's time is reported, from `start` on.
    earlier_seconds = train_seconds_at(checkpoint_dir, start) if start else 0.0
    if start:
        logging.info("resumed from checkpoint at step %d of %d", start, steps)
    last_good = start or None
    sparse_table = None
    if config.train.sparse_embedding:  # the bag encoder's table: row-sparse gradient and update
        lengths = np.minimum(train_batcher.features.row_lengths(), train_batcher.feature_width)
        max_rows = max_batch_rows(lengths, map(iterator.rows_for_step, range(steps)), data.num_features)
        sparse_table = SparseTable(data.num_features, max_rows, config.train.optimizer.encoder, schedules["encoder"])
        logging.info("sparse_embedding: at most %d of the %d embedding rows per step", sparse_table.max_rows,
                     data.num_features)
    train_step = make_step(config, model, tx, loss_fn, schedules, head_update(config, model, steps), sparse_table)
    actions = periodic_actions(config, model, steps)
    predict_k = max(config.eval.top_k, config.eval.predict_k)
    predict = make_predict(model, predict_k)
    if mesh is not None:
        train_step = shard_train_step(train_step, mesh, shardings)
        predict = shard_predict(predict, mesh, shardings)

    memory_batcher = train_batcher if tune_batcher is None else Batcher(
        full_train, config.data.max_features, config.data.max_labels, buckets)  # every training point
    name_choice: dict[str, Any] = {}

    def predictor(state):
        """The prediction function for the parameters of `state` (with the kNN memory built from them if on, and
        the label-name weight chosen for them)."""
        knn_on = config.eval.knn.neighbors > 0
        ova_labels = knn.ova_labels(config.loss.name, data.num_labels)
        if name_index is None:
            if not knn_on:
                return predict
            memory = knn.build_memory(model, variables(state), memory_batcher, config.eval.batch_size)
            return knn.make_knn_predict(model, predict_k, config.eval.knn, memory, ova_labels)

        def names_predict(batcher, k):
            memory = knn.build_memory(model, variables(state), batcher, config.eval.batch_size) if knn_on else None
            return names.make_names_predict(model, k, data.num_features, config.model.head.label_chunk,
                                            name_index, config.eval.knn if knn_on else None, memory, ova_labels)

        weight, tuning = name_weights[0], {}
        if tune_batcher is not None:
            weight, tuning = names.choose_weight(names_predict(train_batcher, 1), variables(state), tune_batcher,
                                                 config.eval.batch_size, name_weights, inv_ps)
            logging.info("eval.names: weight %g, P@1 on %d held-out training points by weight: %s", weight,
                         tune_batcher.split.num_points, tuning)
        name_choice.update(weight=weight, p1_by_weight=tuning,
                           tuned_on=0 if tune_batcher is None else tune_batcher.split.num_points)
        final = names_predict(memory_batcher, predict_k)
        return lambda v, batch: final(v, batch, weight)
    inv_ps = inverse_propensity(full_train.labels, config.eval.propensity_a, config.eval.propensity_b)

    writer = MetricWriter(outdir, start)  # lines after `start` (logged before a stop) are dropped
    progress = Progress(steps, start, config.train.progress, config.train.log_every)
    train_seconds = 0.0
    interval_t0, interval_steps = time.perf_counter(), 0
    previous: tuple[int, dict[str, jax.Array]] | None = None
    try:
        for step, batch in enumerate(iterator.iterate(start, steps), start=start + 1):
            state, metrics = train_step(state, batch, step_key)
            for action in actions:
                if action.due(step):
                    state = action.run(state, batch, step_key)
            interval_steps += 1
            # Check the previous step's loss while this one runs, so the host never stalls the device.
            if previous is not None:
                _check_finite(previous[0], _to_float(previous[1]), last_good)
            previous = (step, metrics)
            stop = preemption.requested(step, checkpointer.manager)  # SIGTERM/SIGINT: save this step, stop
            logged = step % config.train.log_every == 0 or step == steps
            checkpoint = step % config.train.checkpoint_every == 0 or step == steps or stop
            evaluate_now = config.train.eval_every > 0 and step % config.train.eval_every == 0 and step != steps
            if logged or checkpoint or evaluate_now:
                values = _to_float(metrics)
                _check_finite(step, values, last_good)
                elapsed = time.perf_counter() - interval_t0
                train_seconds += elapsed
                if logged:
                    values["steps_per_s"] = interval_steps / elapsed if elapsed > 0 else 0.0
                    writer.write(step, values)
                progress.update(step, values["loss"])
                if checkpoint:
                    # A checkpoint is only written for a step whose loss, gradient norm and parameters are
                    # finite (the loss and gradient norm were checked above), so it is never a bad one.
                    if not _all_finite((state.params, state.model_state)):
                        raise NonFiniteLossError(f"non-finite parameters after step {step}; stopping "
                                                 f"(last good checkpoint: step {last_good})")
                    # The time first: a run killed in between resumes from the previous checkpoint, whose
                    # time is recorded too; the other order could leave a checkpoint without its time.
                    if earlier_seconds is not None and jax.process_index() == 0:
                        record_train_seconds(checkpoint_dir, step, earlier_seconds + train_seconds)
                    checkpointer.save(step, state)
                    last_good = step
                if evaluate_now:
                    scores = evaluate(predictor(state), variables(state), test_batcher, config.eval.batch_size,
                                      config.eval.top_k, inv_ps)
                    writer.write(step, {f"eval/{k}": v for k, v in scores.items()})
                interval_t0, interval_steps = time.perf_counter(), 0
                if stop:
                    raise Interrupted(preemption.signum, step)
            else:
                progress.update(step, None)
        if previous is not None:
            _check_finite(previous[0], _to_float(previous[1]), last_good)
        if preemption.signum is not None:  # after the last step's checkpoint: the rerun only evaluates
            raise Interrupted(preemption.signum, steps)
    finally:
        progress.close()
        writer.close()
        checkpointer.close()

    t_eval = time.perf_counter()
    predictions_path = os.path.join(outdir, "predictions.txt") if config.eval.write_predictions else None
    test_metrics = evaluate(predictor(state), variables(state), test_batcher, config.eval.batch_size, config.eval.top_k,
                            inv_ps, predictions_path)
    test_metrics.update(head_test_metrics(config, model, variables(state), test_batcher))  # e.g. candidate recall
    eval_seconds = time.perf_counter() - t_eval
    timed_from, timed_seconds = (0, earlier_seconds + train_seconds) if earlier_seconds is not None else (
        start, train_seconds)
    results = {
        "test": test_metrics,
        "evaluated_on": "validation" if config.data.validation_fraction > 0 else "test",
        "loss": config.loss.name,  # the loss trained (config.loss.name=auto: the one chosen from the data)
        "knn_neighbors": config.eval.knn.neighbors,  # K of the kNN mix the metrics were computed with (0: none)
        "label_names": name_choice or None,  # the label-name mix's weight (and how it was chosen), None: off
        "width": config.model.encoder.width,  # the encoder's width trained (loss auto: the one chosen with the loss)
        "steps": steps,
        "resumed_from_step": start,
        "epochs": steps / iterator.steps_per_epoch,
        "num_params": int(num_params),
        "head_state_mb": head_state_mb,  # head parameters + their optimizer state + head indices/tables
        # All the training time from step `train_seconds_from_step` (0 unless the run was resumed from a
        # checkpoint whose time was not recorded) to the end, over every process that ran it.
        "train_seconds": timed_seconds,
        "train_seconds_from_step": timed_from,
        "seconds_per_epoch": timed_seconds / max((steps - timed_from) / iterator.steps_per_epoch, 1e-9),
        "eval_seconds": eval_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "data": {"name": data.name, "location": data.location, **data.stats()},
        "truncation": truncation,
        "machine": machine_info(),
        "workdir": os.path.abspath(workdir),
    }
    if name_index is not None:
        names.save_index(outdir, name_index, name_choice["weight"])
    elif os.path.exists(stale := os.path.join(outdir, names.INDEX_FILE)):
        os.remove(stale)
    write_json(os.path.join(outdir, "results.json"), results)
    if primary:
        workdir_lib.write_status(workdir, "finished", step=steps)
    return results


def results_table(results: dict[str, Any]) -> str:
    """The console summary of a run: the headline metrics, time and memory."""
    t = results["test"]
    k = max(int(name.split("@")[1]) for name in t if name.startswith("P@"))  # config.eval.top_k
    metrics = [(name, f"{t[name]:.2f}") for name in ("P@1", "P@3", f"P@{k}", f"nDCG@{k}", f"PSP@{k}") if name in t]
    cols = list(dict(metrics).items()) + [("train s", f"{results['train_seconds']:.1f}"),
                                          ("peak MB", f"{results['peak_rss_mb']:.1f}")]
    head = "| " + " | ".join(name for name, _ in cols) + " |"
    rule = "|" + "|".join("---" for _ in cols) + "|"
    row = "| " + " | ".join(value for _, value in cols) + " |"
    return "\n".join([head, rule, row])


__all__ = ["train_and_evaluate", "results_table", "NonFiniteLossError", "Interrupted"]
