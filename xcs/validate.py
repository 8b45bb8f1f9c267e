"""validate(config): every key's range, every choice and every combination, before any work.

The command line calls it before the workdir is written or any data is read; train_and_evaluate
calls it again for library users. A problem raises `xcs.core.errors.ConfigError` naming the key,
its value and what is allowed (one line). The rules of the shared sections (data, train, eval,
mesh, async) are here; a method's own keys are checked by its declaration's `check`, and the
combinations (intermediate layer, auxiliary objective, kNN, mesh, async SGD, losses, data
sources) come from the declarations' fields.
"""

from __future__ import annotations

import ml_collections

from xcs.auxiliary import method as auxiliary
from xcs.core.checks import choice, require
from xcs.core.errors import ConfigError
from xcs.core.protocols import EncoderMethod, HeadMethod
from xcs.data import text_inputs
from xcs.data.dataset import SOURCES
from xcs.data.kronecker import KroneckerSpec
from xcs.data.region import RegionSpec
from xcs.data.synthetic import SyntheticSpec
from xcs.losses import AUTO, LOSSES
from xcs.nn.matmul import MATMUL_DTYPES
from xcs.nn.wrappers import ACTIVATIONS
from xcs.registry import ENCODERS, HEADS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")
PROGRESS = ("auto", "bar", "lines", "none")
TRAIN_MODES = ("sync", "async")
ASYNC_DELAYS = ("fixed", "random")


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError (a UserError) for the first key that is out of range or not allowed."""
    choice(config, "model.head.name", HEADS)
    choice(config, "model.encoder.name", ENCODERS)
    head, encoder = HEADS[config.model.head.name], ENCODERS[config.model.encoder.name]
    _check_data(config, encoder)
    _check_train(config)
    _check_eval(config)
    _check_combinations(config, head, encoder)
    encoder.check(config)
    head.check(config)
    auxiliary.check(config)


def _check_data(config: ml_collections.ConfigDict, encoder: EncoderMethod) -> None:
    data = config.data
    choice(config, "data.source", SOURCES)
    require(0.0 <= data.validation_fraction < 1.0, config, "data.validation_fraction",
            "must be in [0, 1) (the share of the training split held out; 0 = evaluate on test)")
    require(data.max_features >= 0, config, "data.max_features", "must be >= 0 (0 = the longest row)")
    require(data.max_labels >= 0, config, "data.max_labels", "must be >= 0 (0 = the longest row)")
    require(data.source not in ("xmc_repo", "tfds") or bool(data.name or data.dir), config, "data.name",
            "names the data directory under $XCS_DATA_DIR (or set data.dir)")
    text_inputs.check_config(data.text)
    text = data.text
    require(text.embed_batch_size >= 1, config, "data.text.embed_batch_size", "must be >= 1")
    # The generators check their own fields (dataclass __post_init__): build the spec of the source in use.
    specs = {"synthetic": (SyntheticSpec, data.synthetic), "region": (RegionSpec, data.region),
             "kronecker": (KroneckerSpec, data.kronecker)}
    if data.source in specs:
        spec, section = specs[data.source]
        fields = section.to_dict()
        if data.source == "kronecker":
            fields.pop("from_files")
        try:
            spec(**fields)
        except TypeError as e:  # a field the spec does not take: a bug in configs/default.py, not a user error
            raise RuntimeError(f"config.data.{data.source} does not match {spec.__name__}: {e}") from e
    if encoder.sources is not None:
        require(data.source in encoder.sources, config, "data.source",
                f"the {encoder.name} encoder reads {', '.join(encoder.sources)} data only")
    claimed = {s: m.name for m in ENCODERS.values() if m.sources for s in m.sources}
    if data.source in claimed and claimed[data.source] != encoder.name:
        raise ConfigError("model.encoder.name", encoder.name,
                          f"data.source={data.source!r} is read by the {claimed[data.source]} encoder only")


def _check_optimizer(config: ml_collections.ConfigDict, part: str) -> None:
    key = f"train.optimizer.{part}"
    opt = config.train.optimizer[part]
    choice(config, f"{key}.name", OPTIMIZERS)
    require(opt.learning_rate >= 0, config, f"{key}.learning_rate", "must be >= 0")
    require(opt.weight_decay >= 0, config, f"{key}.weight_decay", "must be >= 0")
    require(0.0 <= opt.momentum < 1.0, config, f"{key}.momentum", "must be in [0, 1)")
    require(0.0 <= opt.b1 < 1.0, config, f"{key}.b1", "must be in [0, 1)")
    require(0.0 <= opt.b2 < 1.0, config, f"{key}.b2", "must be in [0, 1)")
    require(opt.eps > 0, config, f"{key}.eps", "must be > 0")


def _check_train(config: ml_collections.ConfigDict) -> None:
    train = config.train
    require(train.steps >= 0, config, "train.steps", "must be >= 0 (0 = train.epochs passes over the data)")
    if train.steps == 0:
        require(train.epochs > 0, config, "train.epochs", "must be > 0 (or set train.steps)")
    require(train.batch_size >= 1, config, "train.batch_size", "must be >= 1")
    choice(config, "train.schedule", SCHEDULES)
    require(train.warmup_steps >= 0, config, "train.warmup_steps", "must be >= 0")
    require(0.0 <= train.final_lr_fraction <= 1.0, config, "train.final_lr_fraction", "must be in [0, 1]")
    require(train.clip_grad_norm >= 0, config, "train.clip_grad_norm", "must be >= 0 (0 = off)")
    for part in ("encoder", "head"):
        _check_optimizer(config, part)
    require(train.log_every >= 1, config, "train.log_every", "must be >= 1")
    require(train.checkpoint_every >= 1, config, "train.checkpoint_every", "must be >= 1")
    require(train.keep_checkpoints >= 1, config, "train.keep_checkpoints", "must be >= 1")
    require(train.eval_every >= 0, config, "train.eval_every", "must be >= 0 (0 = only at the end)")
    choice(config, "train.progress", PROGRESS)
    choice(config, "train.mode", TRAIN_MODES)
    if train.mode == "async":
        a = config.async_
        require(a.workers >= 1, config, "async_.workers", "must be >= 1")
        require(a.max_staleness >= 0, config, "async_.max_staleness", "must be >= 0")
        choice(config, "async_.delay", ASYNC_DELAYS)


def _check_prediction_mix(config: ml_collections.ConfigDict, head: HeadMethod, shape: tuple[int, ...], setting: str,
                          off: str) -> None:
    """A mix at prediction (the kNN votes, the label names) reads every label's exact probability, on one device."""
    require(config.loss.name in ("softmax", "ova", AUTO), config, "loss.name",
            f"{setting} mixes the head's softmax or one-versus-all probabilities; train with 'softmax', 'ova' or "
            f"'auto', or set {off}")
    require(head.knn, config, "model.head.name",
            f"{setting} needs every label's exact probability, which this head does not give (heads that do: "
            f"{', '.join(m.name for m in HEADS.values() if m.knn)}); or set {off}")
    require(shape == (1, 1), config, "mesh.shape", f"{setting}: predicts on one device (mesh.shape=(1, 1))")


def name_weights(config: ml_collections.ConfigDict) -> tuple[float, ...]:
    """config.eval.names.weights ("0,0.1,0.2") as floats; () where an entry is not a number."""
    try:
        return tuple(float(w) for w in config.eval.names.weights.split(",") if w.strip())
    except ValueError:
        return ()


def _check_eval(config: ml_collections.ConfigDict) -> None:
    ev = config.eval
    require(ev.batch_size >= 1, config, "eval.batch_size", "must be >= 1")
    require(ev.top_k >= 1, config, "eval.top_k", "must be >= 1")
    require(ev.predict_k >= 1, config, "eval.predict_k", "must be >= 1")
    require(ev.propensity_a > 0, config, "eval.propensity_a", "must be > 0")
    require(ev.propensity_b > 0, config, "eval.propensity_b", "must be > 0")
    knn = ev.knn
    require(knn.neighbors >= 0, config, "eval.knn.neighbors", "must be >= 0 (0 = off)")
    if knn.neighbors > 0:
        require(0.0 <= knn.weight <= 1.0, config, "eval.knn.weight", "must be a mixing weight in [0, 1]")
        require(knn.temperature > 0, config, "eval.knn.temperature", "must be > 0")
        require(knn.memory_chunk >= 1, config, "eval.knn.memory_chunk", "must be >= 1")
    weights = name_weights(config)
    require(bool(weights) and all(0.0 <= w <= 1.0 for w in weights), config, "eval.names.weights",
            "must be comma-separated mixing weights in [0, 1] (\"0\" = off)")
    if len(weights) > 1:
        require(0.0 < ev.names.tune_fraction <= 0.5, config, "eval.names.tune_fraction",
                "must be in (0, 0.5]: the share of training points that chooses among eval.names.weights")


def _mesh_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    shape = tuple(config.mesh.shape)
    if len(shape) != 2 or any(not isinstance(s, int) or s == 0 or s < -1 for s in shape) or shape.count(-1) > 1:
        raise ConfigError("mesh.shape", shape, "expected (data, model) device counts, positive or one -1 "
                          "(all remaining devices)")
    return shape


def _check_combinations(config: ml_collections.ConfigDict, head: HeadMethod, encoder: EncoderMethod) -> None:
    name = config.model.head.name
    shape = _mesh_shape(config)
    if shape != (1, 1):
        require(head.mesh, config, "model.head.name",
                f"does not run on a device mesh (mesh.shape={shape}) yet; heads that do: "
                f"{', '.join(m.name for m in HEADS.values() if m.mesh)} (or use mesh.shape=(1, 1))")
        require(encoder.mesh, config, "model.encoder.name", f"does not run on a device mesh (mesh.shape={shape})")
        require(not auxiliary.enabled(config), config, "aux.clusters",
                f"the auxiliary objective is not sharded yet (mesh.shape={shape}); set aux.clusters=0")
        data_axis = shape[0]
        if data_axis > 0:
            for key in ("train.batch_size", "eval.batch_size"):
                section, field = key.split(".")
                require(config[section][field] % data_axis == 0, config, key,
                        f"must be a multiple of the mesh's data axis size {data_axis} (mesh.shape={shape})")
    choice(config, "loss.name", (*LOSSES, AUTO))
    if config.loss.name == AUTO:
        require(head.losses is None or {"softmax", "ova"} <= set(head.losses), config, "loss.name",
                f"auto chooses softmax or ova, and the {name} head trains {', '.join(head.losses or ())}")
        require(0.0 < config.loss.auto_share <= 1.0, config, "loss.auto_share", "must be in (0, 1]")
        require(config.loss.auto_ova_epochs > 0.0, config, "loss.auto_ova_epochs", "must be > 0")
        require(config.loss.auto_ova_width >= 0, config, "loss.auto_ova_width",
                "must be >= 0 (0 = model.encoder.width)")
    if head.losses is not None and config.loss.name != AUTO:
        require(config.loss.name in head.losses, config, "loss.name",
                f"the {name} head trains {', '.join(head.losses)}")
    h = config.model.head
    require(h.intermediate >= 0, config, "model.head.intermediate", "must be >= 0 (0 = none)")
    if h.intermediate > 0:
        require(head.intermediate, config, "model.head.intermediate",
                f"the {name} head takes h from the encoder directly; set intermediate=0")
        choice(config, "model.head.intermediate_activation", ACTIVATIONS)
    choice(config, "model.head.matmul_dtype", MATMUL_DTYPES)
    if h.matmul_dtype != "float32":
        require(head.bfloat16, config, "model.head.matmul_dtype",
                f"the {name} head's products are float32 only (heads that take bfloat16: "
                f"{', '.join(m.name for m in HEADS.values() if m.bfloat16)})")
        require(shape == (1, 1), config, "model.head.matmul_dtype",
                f"bfloat16 products run on one device (mesh.shape={shape}); use float32 on a mesh")
    if auxiliary.enabled(config):
        require(head.aux, config, "aux.clusters",
                f"the auxiliary objective is not combined with the {name} head (it owns its update); "
                "set aux.clusters=0")
    if config.train.mode == "async":
        require(head.async_sgd, config, "train.mode",
                f"the {name} head owns its update and is not simulated asynchronously; use train.mode=sync")
        require(encoder.async_sgd, config, "train.mode",
                f"the {encoder.name} encoder is not simulated asynchronously; use train.mode=sync")
    if config.train.sparse_embedding:
        require(encoder.sparse_embedding, config, "train.sparse_embedding",
                f"the {encoder.name} encoder has no embedding table read by feature ids (encoders that do: "
                f"{', '.join(m.name for m in ENCODERS.values() if m.sparse_embedding)})")
        require(shape == (1, 1), config, "train.sparse_embedding", f"runs on one device (mesh.shape={shape})")
        require(config.train.mode == "sync", config, "train.sparse_embedding", "runs with train.mode=sync")
        require(config.train.clip_grad_norm == 0, config, "train.sparse_embedding",
                "the table's rows are stepped apart from optax, so the global norm is not clipped; set "
                "train.clip_grad_norm=0")
    if config.eval.knn.neighbors > 0:
        _check_prediction_mix(config, head, shape, f"eval.knn.neighbors={config.eval.knn.neighbors}",
                              "eval.knn.neighbors=0")
    if any(name_weights(config)):
        _check_prediction_mix(config, head, shape, f"eval.names.weights={config.eval.names.weights!r}",
                              "eval.names.weights=0")
