"""Table: text encoders on wordnet_hypernyms (frozen MiniLM, MiniLM + tf-idf) beside tf-idf and the peers.

    python launch.py --config=configs/tables/text.py --sweep --workdir=runs/tables/text
    python -m experiments.peers --config=configs/tables/text.py --workdir=runs/tables/text
    python -m xcs.report runs/tables/text --out=experiments/results/text

The frozen MiniLM embeddings of train_texts.txt / test_texts.txt are computed by the first run that
needs them and cached beside the texts (data/NAME/*_texts.txt.minilm-mean-L128[-layers...].xcs-cache.npz).

Variants (`:key=value,...`):
  data=NAME   data set with texts in $XCS_DATA_DIR/NAME (default wordnet_hypernyms; synthetic with smoke)
  encoder=E   the run that get_config gives alone: tfidf (default; the peers read its data) | minilm | minilm+tfidf |
              minilm_e2e (also the sweep's only encoder: fine-tuning takes ~1 h a run on 2 cores, so it has its
              own table, experiments/results/text_e2e; copy the kNN-off run's checkpoints/ into the kNN run's
              directory to evaluate instead of retraining, as the README does)
  smoke       seconds-long runs on the small synthetic data (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import xmc
from configs.tables import baselines
from xcs.config import parse_arg

VARIANTS = {"data": "", "encoder": "tfidf", "smoke": False}
ROWS = ("tfidf", "minilm", "minilm+tfidf")
E2E = "minilm_e2e"  # MiniLM fine-tuned end to end: its own sweep (encoder=minilm_e2e)
KNN = (0, 10)  # each encoder with the head alone and mixed with its 10 nearest training points (config.eval.knn)


def _variant(arg: str | None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if not v.data:
        v.data = "synthetic" if v.smoke else "wordnet_hypernyms"
    return v


def _arg(v: ml_collections.ConfigDict, encoder: str) -> str:
    return f"data={v.data},encoder={encoder}" + (",smoke" if v.smoke else "")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = _variant(arg)
    config = xmc.build(data=v.data, encoder=v.encoder, smoke=v.smoke)
    config.loss.name = "softmax"  # every row is also evaluated with the kNN mix, which reads softmax probabilities
    return config


def sweep(add, arg: str | None = None) -> None:
    """One run per encoder and kNN setting (seed 0); the kNN runs evaluate the same trained model as the others."""
    v = _variant(arg)
    for encoder in (E2E,) if v.encoder == E2E else ROWS:
        for neighbors in KNN:
            add(arg=_arg(v, encoder), **{"eval.knn.neighbors": neighbors})


peers = baselines.peers  # napkinXC PLT and omikuji on the same data


def _row(config: dict[str, Any]) -> str:
    if "peer" in config:
        return {"napkinxc_plt": "napkinXC PLT", "omikuji": "omikuji (Parabel)"}[config["peer"]["method"]]
    enc, head = config["model"]["encoder"], config["model"]["head"]
    inputs = config["data"].get("text", {}).get("inputs", "none")
    what = {"bag": "tf-idf bag", "dense": "frozen MiniLM", "minilm": "MiniLM end to end",
            "dense_bag": f"frozen MiniLM + tf-idf bag ({enc.get('combine', 'sum')})"}.get(enc["name"], enc["name"])
    if enc["name"] == "dense" and inputs == "none":
        what = "dense"
    layers = config["data"].get("text", {}).get("layers", "last")
    if inputs.startswith("embedding") and layers != "last":
        what += f" (layers {layers})"
    neighbors = config["eval"].get("knn", {}).get("neighbors", 0)
    knn = f" + kNN (K={neighbors}, weight {config['eval']['knn']['weight']})" if neighbors else ""
    return f"xcs {what} d={enc['width']} + {head['name']} head{knn}"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title=f"Text encoders on {_variant(arg).data}",
        row_header="method",
        rows=_row,
        columns=["P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@5", "train_seconds", "seconds_per_epoch",
                 "peak_rss_mb"],
        at_k=["P", "PSP"],
        curves=["loss"],
    )
