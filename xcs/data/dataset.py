"""load_dataset: a data set in memory from any source (config.data.source).

Split, Dataset and data_dir live in xcs.data.split, which the source modules import.
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from xcs.core.errors import MissingInputError, UserError
from xcs.data import text_source, texts
from xcs.data.sparse import CSR
from xcs.data.split import Dataset, Split, data_dir


def _split(pair: tuple[CSR | np.ndarray, CSR]) -> Split:
    features, labels = pair
    if isinstance(features, np.ndarray):
        return Split(labels=labels, dense=features)
    return Split(labels=labels, features=features)


# config.data.source values load_dataset reads.
SOURCES = ("synthetic", "xmc_repo", "tfds", "region", "kronecker")


def load_dataset(config: ml_collections.ConfigDict, seed: int) -> Dataset:
    """Loads `config` (the `config.data` section); holds out a validation part of train if asked."""
    from xcs.data import text_inputs

    text_inputs.check_config(config.text)
    with_texts = config.text.inputs != "none"
    text_paths = {"train": None, "test": None}  # frozen embeddings are cached beside these files
    label_names, vectorizer, names_dir = None, None, None  # label id -> name; tf-idf fitted on texts (text_source)
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
            raise MissingInputError(
                f"data set {config.name!r}: directory {directory!r} does not exist "
                f"(set XCS_DATA_DIR or --config.data.dir)")
        if config.source == "xmc_repo" and text_source.has_texts_and_names(directory) and (
                with_texts or not text_source.has_feature_files(directory)):
            # Texts and label names, no feature file: xcs makes the label map and (for a sparse model) tf-idf.
            held_out = config.validation_fraction > 0
            train, test, label_map = text_source.load_splits(directory, config.text.label_delimiter, held_out)
            label_names = label_map.names
            if config.text.inputs in ("none", "embedding+sparse"):  # the model reads sparse features
                fit_rows = validation_rows(train.num_points, config.validation_fraction, seed)[0] if held_out else None
                train, test, vectorizer = text_source.add_tfidf(train, test, config.text, fit_rows)
            text_paths = {s: p if os.path.isfile(p := os.path.join(directory, f"{s}_texts.txt")) else None
                          for s in text_paths}
            with_texts = False  # already read
        elif config.source == "xmc_repo":
            from xcs.data import xmc_repo

            train, test = (_split(s) for s in xmc_repo.load_splits(directory, cache=config.cache))
            names_dir = directory  # labels.txt beside the files names the labels
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
        raise UserError(f"config.data.source={config.source!r}: expected one of {', '.join(SOURCES)}")

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
            raise UserError(f"{location}: train and test feature dimensions differ")
    elif train.tokens is not None:
        num_features = 0  # texts only (AttentionXML layout): the text encoder reads the tokens
    else:
        raise UserError(f"{location}: no features, only texts; set config.data.text.inputs to embedding or tokens")

    vocabulary = vectorizer.vocabulary if vectorizer is not None else None
    if names_dir is not None:
        label_names = text_source.read_label_names(names_dir, num_labels)
        vocabulary = text_source.read_vocabulary(names_dir, num_features)
    if config.validation_fraction > 0:
        # Tuning happens on a held-out part of train; the test split is not looked at.
        kept, held = validation_rows(train.num_points, config.validation_fraction, seed)
        train, test = train.take(kept), train.take(held)
    return Dataset(config.name, train, test, num_features, num_labels, location, label_names=label_names,
                   vectorizer=vectorizer, vocabulary=vocabulary)


def validation_rows(num_points: int, fraction: float, seed: int, stream: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept for training, held-out rows), each ascending: the split config.data.validation_fraction makes
    (another `stream` draws another split of the same seed)."""
    perm = np.random.default_rng([seed, stream]).permutation(num_points)
    n_val = max(1, int(round(fraction * num_points)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
