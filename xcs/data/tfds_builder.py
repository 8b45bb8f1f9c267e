"""A TFDS builder for Extreme Classification Repository files, usable without TensorFlow.

`XmcRepo` ('xmc_repo') converts the files of a manual directory (any layout that
`xcs.data.xmc_repo.find_split_files` understands) into TFDS splits 'train' and 'test', one example
per point: `feat_idx` int32 [n_feat], `feat_val` float32 [n_feat], `label_idx` int32 [n_labels], and
`text` (the point's raw text when the directory has text files, xcs.data.texts; else empty).
Without TensorFlow only the `array_record` file format and `as_data_source()` work (`as_dataset()`
needs TF), so the builder defaults to that format and `load_tfds_split` reads through a data source.

Sizes that the examples cannot carry are kept in the dataset's metadata (`metadata.json`):
`num_features` / `num_labels` (the larger of the two splits), per split the header counts and the
source format, `has_texts`, and a fingerprint (size, mtime) of every source file (text files
included), so that a prepared copy
whose sources have since changed is regenerated instead of silently served stale. Dense sources
(`.npy`) are stored as the non-zeros of each row and given back as a dense float32 array.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from xcs.data import texts as text_files
from xcs.data import xmc_repo
from xcs.data.sparse import CSR

SPLITS = ("train", "test")
_READ_BATCH = 4096  # examples decoded per data-source call


class XmcRepo(tfds.core.GeneratorBasedBuilder):
    """XMC data (XC-repository files in the manual directory) as TFDS splits 'train' and 'test'."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Initial release.", "1.1.0": "A text field: the raw text of each point."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the data set's files in the manual directory, in one of the Extreme Classification "
        "Repository layouts: train.txt + test.txt (header `N F L`, lines `l1,l2 f:v f:v`), or "
        "trn_X_Xf.txt + trn_X_Y.txt and tst_X_Xf.txt + tst_X_Y.txt, or trn_X.npy + trn_X_Y.txt and "
        "tst_X.npy + tst_X_Y.txt. Optionally the raw texts, one per line in point order: train_texts.txt + "
        "test_texts.txt or trn_X.txt + tst_X.txt (the `text` field).")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        """No code path: TFDS uses it only to find a checksums file for downloads (there are none).

        The inherited lookup needs the optional package `importlib_resources` whenever the builder
        lives in a package, which would break preparing without it.
        """
        return None

    def __init__(self, *, file_format: str | None = "array_record", **kwargs):
        # array_record is the one format readable without TensorFlow; callers may still override.
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Extreme multi-label classification data from XC-repository files.",
            features=tfds.features.FeaturesDict({
                "feat_idx": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "feat_val": tfds.features.Tensor(shape=(None,), dtype=np.float32),
                "label_idx": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "text": tfds.features.Text(),  # raw text ({split}_texts.txt or trn_X.txt/tst_X.txt); "" if none
            }),
            # Examples keep the files' row order (keys are row numbers), so row i of a split is
            # point i of its source, as with the direct readers.
            disable_shuffling=True,
            homepage="http://manikvarma.org/downloads/XC/XMLRepository.html",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        loaded = {split: xmc_repo.load_split(manual_dir, split) for split in SPLITS}
        paths = text_paths(manual_dir)
        split_texts = {split: None if paths is None else text_files.read_texts(paths[split], loaded[split][1].num_rows)
                       for split in SPLITS}
        meta = {"sources": source_fingerprint(manual_dir), "splits": {}, "has_texts": paths is not None}
        for split, (features, labels) in loaded.items():
            dense = isinstance(features, np.ndarray)
            meta["splits"][split] = {
                "format": xmc_repo.find_split_files(manual_dir, split)["format"],
                "num_points": int(labels.num_rows),
                "num_features": int(features.shape[1] if dense else features.num_cols),
                "num_labels": int(labels.num_cols),
            }
        meta["num_features"] = max(s["num_features"] for s in meta["splits"].values())
        meta["num_labels"] = max(s["num_labels"] for s in meta["splits"].values())
        self.info.metadata.update(meta)
        return {split: self._generate_examples(*loaded[split], split_texts[split]) for split in SPLITS}

    def _generate_examples(self, features: CSR | np.ndarray, labels: CSR, texts: np.ndarray | None):
        for i in range(labels.num_rows):
            if isinstance(features, np.ndarray):
                row = np.asarray(features[i])
                idx = np.flatnonzero(row).astype(np.int32)
                val = row[idx]
            else:
                idx, val = features.row(i)
            text = "" if texts is None else texts[i]
            yield i, {"feat_idx": idx, "feat_val": val, "label_idx": labels.row(i)[0], "text": text}


def text_paths(manual_dir: str) -> dict[str, str] | None:
    """{split: text file} when both splits have one, else None (a lone text file is not enough)."""
    try:
        return {split: text_files.find_text_file(manual_dir, split) for split in SPLITS}
    except FileNotFoundError:
        return None


def source_fingerprint(manual_dir: str) -> dict[str, list[int]]:
    """{file name: [size, mtime_ns]} of the files that make up both splits of `manual_dir` (texts too)."""
    out = {}
    texts = text_paths(manual_dir)
    for split in SPLITS:
        for path in xmc_repo.find_split_files(manual_dir, split)["paths"] + ([texts[split]] if texts else []):
            st = os.stat(path)
            out[os.path.basename(path)] = [int(st.st_size), int(st.st_mtime_ns)]
    return out


def load_tfds_split(data_dir: str, manual_dir: str, split: str) -> tuple[CSR | np.ndarray, CSR]:
    """Prepares `XmcRepo` from `manual_dir` into `data_dir` if needed and returns `split`.

    Returns (features, labels) like `xmc_repo.load_split`: features are a CSR [N, F], or a float32
    array [N, d] when the source was dense; labels a CSR [N, L] of ones. The column counts are
    the split's own header counts. A prepared copy whose source files changed (size or mtime) is
    regenerated.
    """
    builder = _prepared(data_dir, manual_dir, split)
    meta = builder.info.metadata["splits"][split]
    source = builder.as_data_source(split=split)
    features, labels = _read_rows(source, meta["num_features"], meta["num_labels"])
    if meta["format"] == "dense":
        return features_to_dense(features), labels
    return features, labels


def load_tfds_texts(data_dir: str, manual_dir: str, split: str) -> np.ndarray | None:
    """The `text` field of `split` as an object array of str, or None when the source had no text files."""
    builder = _prepared(data_dir, manual_dir, split)
    if not builder.info.metadata.get("has_texts"):
        return None
    source = builder.as_data_source(split=split)
    out = np.empty(len(source), dtype=object)
    for lo in range(0, len(source), _READ_BATCH):
        for i, ex in enumerate(source.__getitems__(range(lo, min(len(source), lo + _READ_BATCH)))):
            out[lo + i] = ex["text"].decode("utf-8")
    return out


def _prepared(data_dir: str, manual_dir: str, split: str) -> XmcRepo:
    """`XmcRepo` in `data_dir`, prepared from `manual_dir` unless an up-to-date copy is there."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")
    builder = XmcRepo(data_dir=data_dir)
    prepared = builder.is_prepared()
    try:
        fingerprint = source_fingerprint(manual_dir)
    except FileNotFoundError:
        if not prepared:
            raise
        fingerprint = None  # sources gone: the prepared copy is all there is
    if not prepared or (fingerprint is not None and builder.info.metadata.get("sources") != fingerprint):
        mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if prepared  # overwrites a stale copy
                else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, download_mode=mode))
        builder = XmcRepo(data_dir=data_dir)  # reads back the info just written
    return builder


def _read_rows(source, num_features: int, num_labels: int) -> tuple[CSR, CSR]:
    """All examples of a data source as (features, labels) CSRs."""
    n = len(source)
    f_idx, f_val, l_idx = [], [], []
    for lo in range(0, n, _READ_BATCH):
        for ex in source.__getitems__(range(lo, min(n, lo + _READ_BATCH))):
            f_idx.append(ex["feat_idx"])
            f_val.append(ex["feat_val"])
            l_idx.append(ex["label_idx"])
    return _csr(f_idx, f_val, num_features), _csr(l_idx, None, num_labels)


def _csr(idx: list[np.ndarray], val: list[np.ndarray] | None, num_cols: int) -> CSR:
    indptr = np.zeros(len(idx) + 1, np.int64)
    np.cumsum([len(i) for i in idx], out=indptr[1:])
    indices = np.concatenate(idx).astype(np.int32) if idx else np.zeros(0, np.int32)
    if val is None:
        values = np.ones(len(indices), np.float32)
    else:
        values = np.concatenate(val).astype(np.float32) if val else np.zeros(0, np.float32)
    return CSR(indptr, indices, values, int(num_cols))


def features_to_dense(features: CSR) -> np.ndarray:
    """A CSR as a dense float32 array (for sources that were dense to begin with)."""
    out = np.zeros((features.num_rows, features.num_cols), np.float32)
    rows = np.repeat(np.arange(features.num_rows), features.row_lengths())
    out[rows, features.indices] = features.values
    return out
