"""What prediction needs from a run, kept in its workdir at train time (read by xcs.predict).

- `data.json`: the shape of the data as the model saw it: feature and label counts, and the inputs a
  batch carried (sparse features, dense x and its width, tokens and their length, Kronecker factors);
- `label_names.txt` and `tfidf.json`: the data set's label names (texts + label names, or labels.txt
  beside XC files) and the tf-idf vectorizer fitted on its training texts
  (xcs.data.text_source.save_artifacts), so that new texts become features exactly as in training.

A workdir without them (written before they were kept) is still read by xcs.predict, which then loads
the data set once to recover the same facts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from xcs.data import text_source
from xcs.data.split import Dataset
from xcs.train.auto import split_top_label_share

DATA_INFO_FILE = "data.json"
_FORMAT, _VERSION = "xcs-data-info", 1


def data_info(data: Dataset) -> dict[str, Any]:
    """The facts about `data` that building and feeding its model needs (no data itself)."""
    train = data.train
    inputs: dict[str, Any] = {}
    if train.features is not None:
        inputs["sparse"] = int(data.num_features)  # the model's F (its feature embedding's rows)
    if train.dense is not None:
        inputs["dense"] = int(train.dense.shape[1])
    if train.tokens is not None:
        inputs["tokens"] = int(train.tokens.ids.shape[1])
    if train.factors is not None:
        inputs["factors"] = [int(f.shape[1]) for f in train.factors]
    info = {"format": _FORMAT, "version": _VERSION, "name": data.name, "location": data.location,
            "num_features": int(data.num_features), "num_labels": int(data.num_labels), "inputs": inputs}
    share = split_top_label_share(train)  # what config.loss.name=auto is resolved from, in training and prediction
    if share is not None:
        info["top_label_share"] = share
    return info


def save_for_prediction(data: Dataset, directory: str) -> None:
    """Writes data.json and the label names and vectorizer `data` has into `directory` (a run's workdir)."""
    path = os.path.join(directory, DATA_INFO_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data_info(data), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    written = text_source.save_artifacts(data, directory)
    for name in (text_source.LABEL_NAMES_FILE, text_source.VECTORIZER_FILE):  # none left from another data set
        stale = os.path.join(directory, name)
        if stale not in written and os.path.exists(stale):
            os.remove(stale)


def read_data_info(directory: str) -> dict[str, Any] | None:
    """data.json of a workdir (or an export), or None when it has none."""
    path = os.path.join(directory, DATA_INFO_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        info = json.load(f)
    if info.get("format") != _FORMAT or info.get("version") != _VERSION:
        return None
    return info
