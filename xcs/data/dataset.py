"""A data set in memory: train and test splits of (features, labels), from any source."""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from xcs.data import texts
from xcs.data.sparse import CSR
from xcs.data.texts import Tokens


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: labels plus either sparse features (CSR), dense features [N, d] or Kronecker factors."""

    labels: CSR
    features: CSR | None = None
    dense: np.ndarray | None = None
    factors: tuple[np.ndarray, ...] | None = None  # x = factors[0][i] ⊗ factors[1][i] ⊗ ... (xcs.data.kronecker)
    texts: np.ndarray | None = None  # [N] object array of str: the raw texts (config.data.text, xcs.data.texts)
    tokens: Tokens | None = None  # the texts tokenized, for an encoder trained end to end (xcs.data.text_inputs)

    @property
    def num_points(self) -> int:
        return self.labels.num_rows

    def take(self, rows: np.ndarray) -> Split:
        return Split(
            labels=self.labels.take(rows),
            features=None if self.features is None else self.features.take(rows),
            dense=None if self.dense is None else np.asarray(self.dense[rows]),
            factors=None if self.factors is None else tuple(np.asarray(f[rows]) for f in self.factors),
            texts=None if self.texts is None else self.texts[rows],
            tokens=None if self.tokens is None else self.tokens.take(rows),
        )


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    num_features: int  # feature vocabulary (sparse) or dimension (dense)
    num_labels: int
    location: str  # where it came from, for results.json

    @property
    def dense(self) -> bool:
        return self.train.dense is not None

    def stats(self) -> dict[str, float | int]:
        out: dict[str, float | int] = dict(num_features=self.num_features, num_labels=self.num_labels)
        for name, split in (("train", self.train), ("test", self.test)):
            lab = split.labels.row_lengths()
            out[f"{name}_points"] = split.num_points
            out[f"{name}_labels_per_point"] = round(float(lab.mean()), 3) if len(lab) else 0.0
            out[f"{name}_points_without_labels"] = int((lab == 0).sum())
            if split.features is not None:
                out[f"{name}_points_without_features"] = int((split.features.row_lengths() == 0).sum())
        return out


def data_dir(config: ml_collections.ConfigDict) -> str:
    """The directory of an on-disk data set: data.dir, else $XCS_DATA_DIR/<data.name>."""
    return config.dir or os.path.join(os.environ.get("XCS_DATA_DIR", "data"), config.name)


def _split(pair: tuple[CSR | np.ndarray, CSR]) -> Split:
    features, labels = pair
    if isinstance(features, np.ndarray):
        return Split(labels=labels, dense=features)
    return Split(labels=labels, features=features)


def load_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """Loads `config` (the `config.data` section); holds out a validation part of train if asked."""
    from xcs.data import text_inputs

    text_inputs.check_config(config.text)
    with_texts = config.text.inputs != "none"
    text_paths = {"train": None, "test": None}  # frozen embeddings are cached beside these files
    if config.source == "synthetic":
        from xcs.data import synthetic

        spec = synthetic.SyntheticSpec(**config.synthetic.to_dict())
        train, test = (_split(synthetic.generate_split(spec, s)) for s in ("train", "test"))
        if with_texts:
            train, test = (dataclasses.replace(s, texts=synthetic.generate_texts(spec, s.features))
                           for s in (train, test))
        location = f"synthetic {spec}"
    elif config.source == "region":
        from xcs.data import region

        spec = region.RegionSpec(**config.region.to_dict())
        train, test = (_split(region.generate_split(spec, s)) for s in ("train", "test"))
        location = f"region {spec}"
    elif config.source == "kronecker":
        from xcs.data import kronecker

        train, test, location = kronecker.load_splits(config)
    elif config.source in ("xmc_repo", "tfds"):
        directory = data_dir(config)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"data set {config.name!r}: directory {directory!r} does not exist "
                f"(set XCS_DATA_DIR or --config.data.dir)")
        if config.source == "xmc_repo" and with_texts and texts.is_attentionxml(directory):
            loaded = texts.load_attentionxml(directory)  # texts and named labels, no feature file
            train, test = (Split(labels=loaded[s][1], texts=loaded[s][0]) for s in ("train", "test"))
            text_paths = {s: os.path.join(directory, f"{s}_texts.txt") for s in text_paths}
            with_texts = False  # already read
        elif config.source == "xmc_repo":
            from xcs.data import xmc_repo

            train, test = (_split(xmc_repo.load_split(directory, s, cache=config.cache)) for s in ("train", "test"))
        else:
            from xcs.data import tfds_builder

            tfds_dir = os.path.join(directory, "tfds")
            train, test = (_split(tfds_builder.load_tfds_split(tfds_dir, directory, s)) for s in ("train", "test"))
        location = os.path.abspath(directory)
        if with_texts and config.source == "tfds":  # the builder's text field (the text files may be gone)
            split_texts = {s: tfds_builder.load_tfds_texts(tfds_dir, directory, s) for s in ("train", "test")}
            if split_texts["train"] is None:
                texts.find_text_file(directory, "train")  # raises, naming the files looked for
            text_paths = tfds_builder.text_paths(directory) or text_paths  # the frozen cache goes beside them
            train, test = (dataclasses.replace(train, texts=split_texts["train"]),
                           dataclasses.replace(test, texts=split_texts["test"]))
        elif with_texts:  # one text per point, beside the data files
            text_paths["train"], train_texts = texts.load_texts(directory, "train", train.num_points)
            text_paths["test"], test_texts = texts.load_texts(directory, "test", test.num_points)
            train, test = dataclasses.replace(train, texts=train_texts), dataclasses.replace(test, texts=test_texts)
    else:
        raise ValueError(f"config.data.source={config.source!r}: expected synthetic, xmc_repo, tfds, region or "
                         "kronecker")

    if config.text.inputs != "none":
        train, test = (text_inputs.add_text_inputs(config.text, s, text_paths[name])
                       for name, s in (("train", train), ("test", test)))
    num_labels = max(train.labels.num_cols, test.labels.num_cols)
    if train.factors is not None:
        num_features = int(np.prod([f.shape[1] for f in train.factors]))  # d of x = ⊗ factors (never formed)
    elif train.features is not None:  # sparse (with x beside them for text inputs embedding+sparse)
        num_features = max(train.features.num_cols, test.features.num_cols)
    elif train.dense is not None:
        num_features = train.dense.shape[1]
        if test.dense is None or test.dense.shape[1] != num_features:
            raise ValueError(f"{location}: train and test feature dimensions differ")
    elif train.tokens is not None:
        num_features = 0  # texts only (AttentionXML layout): the text encoder reads the tokens
    else:
        raise ValueError(f"{location}: no features, only texts; set config.data.text.inputs to embedding or tokens")

    if config.validation_fraction > 0:
        # Tuning happens on a held-out part of train; the test split is not looked at.
        perm = np.random.default_rng([seed, 7]).permutation(train.num_points)
        n_val = max(1, int(round(config.validation_fraction * train.num_points)))
        train, test = train.take(np.sort(perm[n_val:])), train.take(np.sort(perm[:n_val]))
    return Dataset(config.name, train, test, num_features, num_labels, location)
