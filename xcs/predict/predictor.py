"""Predictor: a trained model applied to new inputs; `load` reads a run's workdir or an exported folder.

    predictor = xcs.load("runs/x")                 # or an export: xcs.load("models/x")
    ids, scores = predictor.predict(inputs, k=10)  # [N, k] label ids (-1 = none) and scores, best first
    predictor.label_names                          # label id -> name, or None

From a workdir, the latest checkpoint (of a finished or an interrupted run) is restored with the run's
config (config.json) and the model rebuilt by xcs.registry.build_model. The auxiliary objective
(config.aux) only trains: prediction uses the head inside it, so its classifier over label clusters
is dropped. Points are scored in batches of config.eval.batch_size with the functions the training
loop evaluates with (xcs.train.state.make_predict; xcs.train.knn.make_knn_predict with the kNN mix),
jitted once per k and batch shape, so a run's own test split gives its predictions.txt exactly.

With the kNN mix (config.eval.knn.neighbors > 0), the memory of training points is built from the
training split named in the config (read once, on the first prediction); an export keeps it. With the
label-name mix (xcs.train.names), the run's label_names_match.npz gives the names' index and the weight
training chose; an export keeps it too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import flax.serialization
import jax
import ml_collections
import numpy as np
from absl import logging

from xcs.auxiliary.objective import AUX_COLLECTION
from xcs.core.errors import MissingInputError, UserError
from xcs.data import text_source
from xcs.data.batching import Batcher, eval_batches
from xcs.data.sparse import CSR
from xcs.data.split import Dataset, Split, data_dir
from xcs.data.texts import Tokens
from xcs.data.tfidf import TfidfVectorizer
from xcs.losses import get_loss
from xcs.nn.model import XMCModel
from xcs.predict import inputs as inputs_lib
from xcs.registry import build_model
from xcs.train import artifacts, knn
from xcs.train import names as names_lib
from xcs.train.auto import resolve_auto
from xcs.train.checkpoint import Checkpointer
from xcs.train.jsonio import write_json
from xcs.train.state import make_predict

EXPORT_FILE = "xcs-export.json"  # marks an exported model folder
VARIABLES_FILE = "variables.msgpack"
MEMORY_FILE = "knn_memory.npz"
CONFIG_FILE = "config.json"
_EXPORT_FORMAT, _EXPORT_VERSION = "xcs-export", 1


def read_config(path: str) -> ml_collections.ConfigDict:
    """A run's config.json as a ConfigDict (JSON lists back to the tuples configs/default.py uses)."""

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        return tuple(tuples(v) for v in x) if isinstance(x, list) else x

    try:
        with open(path) as f:
            return ml_collections.ConfigDict(tuples(json.load(f)))
    except FileNotFoundError:
        raise MissingInputError(f"{path}: no such file (the run's config)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None


def prediction_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` without the auxiliary objective: the model prediction runs."""
    out = ml_collections.ConfigDict(config.to_dict())
    out.aux.clusters = 0
    return out


def inner_head_variables(collections: dict[str, Any]) -> dict[str, Any]:
    """Flax variables of a model whose head was wrapped by the auxiliary objective, as those of its inner head."""
    out = {}
    for name, tree in collections.items():
        if name == AUX_COLLECTION:
            continue  # the objective's own state (alpha, the label clusters)
        if isinstance(tree, dict) and isinstance(tree.get("head"), dict) and "inner" in tree["head"]:
            tree = {**tree, "head": tree["head"]["inner"]}  # its classifier over clusters is dropped
        out[name] = tree
    return out


def example_batch(info: dict[str, Any], config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """A one-point batch with every input the training batches carried (zeros), for building the model."""
    split = empty_split(1, info["num_labels"])
    inputs = info["inputs"]
    if "sparse" in inputs:
        split = _with(split, features=CSR(np.zeros(2, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                                          inputs["sparse"]))
    if "dense" in inputs:
        split = _with(split, dense=np.zeros((1, inputs["dense"]), np.float32))
    if "tokens" in inputs:
        split = _with(split, tokens=Tokens(np.zeros((1, inputs["tokens"]), np.int32), np.full(1, 2, np.int32)))
    if "factors" in inputs:
        split = _with(split, factors=tuple(np.zeros((1, d), np.float32) for d in inputs["factors"]))
    return Batcher(split, config.data.max_features, 1, config.data.text.length_buckets)(np.zeros(1, np.int64))


def empty_split(num_points: int, num_labels: int) -> Split:
    """A split of `num_points` points without labels or inputs."""
    return Split(labels=CSR(np.zeros(num_points + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                            num_labels))


def _with(split: Split, **fields) -> Split:
    import dataclasses

    return dataclasses.replace(split, **fields)


class _Recorder(dict):
    """A batch that notes which of its keys were read."""

    def __init__(self, batch):
        super().__init__(batch)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


class Predictor:
    """A trained model with what turns inputs into its batches; `predict` gives the top-k labels."""

    def __init__(self, config: ml_collections.ConfigDict, info: dict[str, Any], collections: dict[str, Any],
                 label_names: tuple[str, ...] | None = None, vectorizer: TfidfVectorizer | None = None,
                 memory: knn.Memory | None = None, source: str = "", step: int | None = None,
                 data: Dataset | None = None, name_match: tuple[names_lib.NameIndex, float] | None = None):
        """`collections`: the Flax variables (params and the other collections) of the prediction model (the
        head without the auxiliary objective: `inner_head_variables`), possibly as plain dicts; they are
        checked against the model's. A config with loss.name=auto is resolved as training resolved it."""
        self.config = config = resolve_auto(config, info.get("top_label_share"))
        self.info = info
        self.num_features, self.num_labels = int(info["num_features"]), int(info["num_labels"])
        self.label_names = tuple(label_names) if label_names is not None else None
        self.vectorizer = vectorizer
        self.source, self.step = source, step
        self.batch_size = int(config.eval.batch_size)
        self.default_k = max(int(config.eval.top_k), int(config.eval.predict_k))
        if self.label_names is not None and len(self.label_names) != self.num_labels:
            raise UserError(f"{source}: {len(self.label_names)} label names for a model of {self.num_labels} labels")
        self.model = build_model(prediction_config(config), self.num_features, self.num_labels)
        example = example_batch(info, config)
        loss_fn = get_loss(config.loss.name)

        def init(key, batch):
            return self.model.init({"params": key, "dropout": key}, batch, loss_fn, False, method=XMCModel.loss)

        abstract = jax.eval_shape(init, jax.random.PRNGKey(0), example)
        self.variables = _fit(abstract, collections, source)
        recorder = _Recorder({key: jax.numpy.asarray(value) for key, value in example.items()})
        jax.eval_shape(lambda v: self.model.apply(v, recorder, False), abstract)
        self.reads = frozenset(recorder.read)  # the batch keys the encoder reads
        self._memory = memory
        self._data = data  # the data set, when it was loaded already (the kNN memory is built from its train split)
        self.name_match = name_match  # (index, weight) of the label-name mix, or None
        if name_match is not None and name_match[0].tokens.shape[0] != self.num_labels:
            raise UserError(f"{source}: {names_lib.INDEX_FILE} names {name_match[0].tokens.shape[0]} labels, the "
                            f"model has {self.num_labels}")
        self._functions: dict[int, Callable] = {}

    # -- what the model reads ------------------------------------------------------------------------------

    @property
    def knn(self) -> bool:
        return int(self.config.eval.knn.neighbors) > 0

    @property
    def reads_sparse(self) -> bool:
        return "feat_idx" in self.reads

    @property
    def reads_dense(self) -> bool:
        return "x" in self.reads

    @property
    def reads_tokens(self) -> bool:
        return "token_ids" in self.reads

    @property
    def reads_factors(self) -> bool:
        return any(k.startswith("factor") for k in self.reads)

    @property
    def dense_dim(self) -> int | None:
        return self.info["inputs"].get("dense")

    @property
    def text_path(self) -> str | None:
        """How this model turns texts into its inputs, or None when it cannot."""
        text = self.config.data.text
        if text.inputs == "embedding+sparse":
            return f"{text.encoder} embeddings + tf-idf" if self.vectorizer is not None else None
        if text.inputs in ("embedding", "tokens"):
            return f"{text.encoder} {'token ids' if text.inputs == 'tokens' else 'embeddings'}"
        return "tf-idf (the vectorizer fitted in training)" if self.vectorizer is not None else None

    def describe_inputs(self) -> str:
        """What the model reads, in words (for error messages)."""
        parts = []
        if self.reads_sparse:
            parts.append(f"sparse features (ids < {self.num_features})")
        if self.reads_dense:
            parts.append(f"dense features x of width {self.dense_dim}")
        if self.reads_tokens:
            parts.append("token ids of texts")
        if self.reads_factors:
            parts.append("Kronecker factors")
        return " and ".join(parts) or "nothing"

    # -- prediction ----------------------------------------------------------------------------------------

    def as_split(self, inputs: Any, name: str = "input") -> Split:
        """`inputs` (a CSR, scipy sparse matrix, rows of (ids, values), dense array, texts, or a Split) as a Split."""
        return inputs_lib.to_split(self, inputs, name)

    def predict(self, inputs: Any, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(label ids [N, k] int32, scores [N, k] float32) of the top k labels of every input point, best first.

        `inputs`: an xcs CSR or scipy.sparse matrix [N, F], a list of (feature ids, values) rows, a dense
        array [N, d], or a list of texts (tf-idf and the text encoders). Fewer than k labels found: id -1.
        k defaults to the run's config.eval.predict_k.
        """
        split = inputs if isinstance(inputs, Split) else self.as_split(inputs)
        k = self.default_k if k is None else k
        ids = np.full((split.num_points, k), -1, np.int32)
        scores = np.full((split.num_points, k), -np.inf, np.float32)
        for start, batch_ids, batch_scores in self.predict_batches(split, k):
            ids[start:start + len(batch_ids)], scores[start:start + len(batch_ids)] = batch_ids, batch_scores
        return ids, scores

    def predict_batches(self, split: Split, k: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first row, ids [n, k], scores [n, k]) for each batch of `split`, in order; one batch in flight."""
        k = self.default_k if k is None else int(k)
        if k < 1:
            raise UserError(f"k={k}: must be >= 1")
        predict = self.function(k)
        batcher = Batcher(split, self.config.data.max_features, 0, self.config.data.text.length_buckets)
        pending, start = None, 0
        for batch, valid in eval_batches(batcher, self.batch_size):
            result = (predict(self.variables, batch), start, valid)
            if pending is not None:
                yield _to_numpy(*pending)
            pending = result
            start += valid
        if pending is not None:
            yield _to_numpy(*pending)

    def function(self, k: int) -> Callable[[Any, dict], tuple[jax.Array, jax.Array]]:
        """The jitted `(variables, batch) -> (scores, ids)` for this k (made once per k)."""
        if k not in self._functions:
            if self.name_match is not None:
                index, weight = self.name_match
                predict = names_lib.make_names_predict(
                    self.model, k, self.num_features, int(self.config.model.head.label_chunk), index,
                    self.config.eval.knn if self.knn else None, self.memory() if self.knn else None,
                    knn.ova_labels(self.config.loss.name, self.num_labels))
                self._functions[k] = lambda variables, batch: predict(variables, batch, weight)
            elif self.knn:
                self._functions[k] = knn.make_knn_predict(self.model, k, self.config.eval.knn, self.memory(),
                                                          knn.ova_labels(self.config.loss.name, self.num_labels))
            else:
                self._functions[k] = make_predict(self.model, k)
        return self._functions[k]

    def memory(self) -> knn.Memory:
        """The kNN memory: the training points' embeddings and labels (built from the training split once)."""
        if self._memory is None:
            from xcs.data.dataset import load_dataset

            config = self.config
            data = self._data or load_dataset(config.data, config.seed)
            batcher = Batcher(data.train, config.data.max_features, config.data.max_labels,
                              config.data.text.length_buckets)
            self._memory = knn.build_memory(self.model, self.variables, batcher, config.eval.batch_size)
        return self._memory

    # -- export --------------------------------------------------------------------------------------------

    def export(self, directory: str) -> str:
        """Writes a self-contained model folder that `load` reads without the data or the checkpoints."""
        import shutil

        if os.path.exists(directory) and os.listdir(directory) and not os.path.isfile(
                os.path.join(directory, EXPORT_FILE)):
            raise UserError(f"{directory}: exists and is not an xcs export; give a new or empty directory")
        tmp = directory.rstrip("/") + ".tmp-export"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        with open(os.path.join(tmp, VARIABLES_FILE), "wb") as f:
            f.write(flax.serialization.msgpack_serialize(
                jax.tree.map(np.asarray, flax.serialization.to_state_dict(self.variables))))
        if self.knn:
            memory = self.memory()
            np.savez(os.path.join(tmp, MEMORY_FILE), embeddings=np.asarray(memory.embeddings),
                     label_idx=np.asarray(memory.label_idx), label_mask=np.asarray(memory.label_mask))
        write_json(os.path.join(tmp, CONFIG_FILE), self.config.to_dict())
        write_json(os.path.join(tmp, artifacts.DATA_INFO_FILE), self.info)
        if self.label_names is not None:
            text_source.LabelMap(self.label_names).save(os.path.join(tmp, text_source.LABEL_NAMES_FILE))
        if self.vectorizer is not None:
            self.vectorizer.save(os.path.join(tmp, text_source.VECTORIZER_FILE))
        if self.name_match is not None:
            names_lib.save_index(tmp, *self.name_match)
        write_json(os.path.join(tmp, EXPORT_FILE), {
            "format": _EXPORT_FORMAT, "version": _EXPORT_VERSION, "source": os.path.abspath(self.source),
            "step": self.step, "variables": VARIABLES_FILE, "knn_memory": MEMORY_FILE if self.knn else None,
            "load": "xcs.load(this directory)"})
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
        return directory


def _to_numpy(result, start: int, valid: int) -> tuple[int, np.ndarray, np.ndarray]:
    scores, ids = result
    return start, np.asarray(ids)[:valid].astype(np.int32), np.asarray(scores)[:valid]


def _fit(abstract: Any, restored: dict[str, Any], source: str) -> Any:
    """`restored` (plain dicts of arrays) in the structure and types of `abstract`, shapes checked."""
    try:
        variables = flax.serialization.from_state_dict(abstract, restored)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{source}: the saved parameters do not fit the model of its config "
                        f"({' '.join(str(e).split())[:300]})") from None
    want = jax.tree_util.tree_leaves_with_path(abstract)
    have = jax.tree_util.tree_leaves(variables)
    if len(want) != len(have):
        raise UserError(f"{source}: the saved parameters do not fit the model of its config")
    for (path, a), b in zip(want, have):
        if tuple(a.shape) != tuple(np.shape(b)):
            raise UserError(f"{source}: {jax.tree_util.keystr(path)} is saved with shape {tuple(np.shape(b))}, the "
                            f"model of its config has {tuple(a.shape)}")
    return jax.tree.map(lambda a, b: jax.numpy.asarray(b, a.dtype), abstract, variables)


# ---------------------------------------------------------------------------------------------------------
# Loading


def load(path: str) -> Predictor:
    """The predictor of a run's workdir (its latest checkpoint) or of an exported model folder."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise MissingInputError(f"{path}: no such directory (expected a run's workdir or an exported model)")
    if os.path.isfile(os.path.join(path, EXPORT_FILE)):
        return _load_export(path)
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return _load_workdir(path)
    raise UserError(f"{path}: neither a run's workdir (config.json, checkpoints/) nor an exported model "
                    f"({EXPORT_FILE})")


def _load_workdir(workdir: str) -> Predictor:
    config = read_config(os.path.join(workdir, CONFIG_FILE))
    checkpoints = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(checkpoints):
        raise UserError(f"{workdir}: no checkpoints/ (the run has not saved a checkpoint yet)")
    checkpointer = Checkpointer(checkpoints, max(1, int(config.train.keep_checkpoints)))
    try:
        step = _newest_intact(checkpointer, checkpoints)
        state = checkpointer.restore(step, None)  # plain dicts, as saved; fitted to the model below
    finally:
        checkpointer.close()
    collections = {"params": state["params"], **(state.get("model_state") or {})}
    if config.aux.clusters > 0:
        collections = inner_head_variables(collections)
    info = artifacts.read_data_info(workdir)
    names, vectorizer = text_source.load_artifacts(workdir)
    data = None
    if info is None:  # a workdir from before data.json was kept: the data set tells the same
        from xcs.data.dataset import load_dataset

        data = load_dataset(config.data, config.seed)
        info, names, vectorizer = artifacts.data_info(data), data.label_names, data.vectorizer
    elif names is None and config.data.source == "xmc_repo" and os.path.isdir(data_dir(config.data)):
        names = text_source.read_label_names(data_dir(config.data), int(info["num_labels"]))  # labels.txt
    return Predictor(config, info, collections, names, vectorizer, source=workdir, step=step, data=data,
                     name_match=names_lib.load_index(workdir))


def _newest_intact(checkpointer: Checkpointer, checkpoints: str) -> int:
    """The newest checkpoint whose files match their recorded digests (a damaged one is skipped, left in place)."""
    steps = sorted(checkpointer.manager.all_steps(), reverse=True)
    if not steps:
        raise UserError(f"{checkpoints}: no checkpoint (the run has not saved one yet)")
    for step in steps:
        problem = checkpointer.verify(step)
        if problem is None:
            return step
        logging.warning("checkpoint %s is damaged or partial (%s): trying an older one",
                        os.path.join(checkpoints, str(step)), problem)
    raise UserError(f"{checkpoints}: no intact checkpoint (each is damaged or partial)")


def _load_export(directory: str) -> Predictor:
    with open(os.path.join(directory, EXPORT_FILE)) as f:
        meta = json.load(f)
    if meta.get("format") != _EXPORT_FORMAT or meta.get("version") != _EXPORT_VERSION:
        raise UserError(f"{directory}: {EXPORT_FILE} is not an {_EXPORT_FORMAT} of version {_EXPORT_VERSION}")
    config = read_config(os.path.join(directory, CONFIG_FILE))
    info = artifacts.read_data_info(directory)
    if info is None:
        raise UserError(f"{directory}: no readable {artifacts.DATA_INFO_FILE}")
    with open(os.path.join(directory, meta["variables"]), "rb") as f:
        collections = flax.serialization.msgpack_restore(f.read())
    memory = None
    if meta.get("knn_memory"):
        with np.load(os.path.join(directory, meta["knn_memory"])) as z:
            memory = knn.Memory(jax.numpy.asarray(z["embeddings"]), jax.numpy.asarray(z["label_idx"]),
                                jax.numpy.asarray(z["label_mask"]))
    names, vectorizer = text_source.load_artifacts(directory)
    return Predictor(config, info, collections, names, vectorizer, memory, source=directory, step=meta.get("step"),
                     name_match=names_lib.load_index(directory))
