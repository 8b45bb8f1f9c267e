"""A parsed data file's arrays cached beside it as `<source>.<kind>.xcs-cache.npz`.

The cache is stamped with the reader's format version, the kind of parse and the source's size and
SHA-256 (its content: an edit that keeps the size and the mtime, as `cp -p` or `touch -r` leave it, is
seen; a `touch` alone rebuilds nothing); a stale or unreadable cache is rebuilt, an unwritable one
skipped (caching never fails a run). Hashing reads the file once (about 1 s per GB).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable

import numpy as np

from xcs.data.sparse import CSR


def csr_arrays(prefix: str, csr: CSR) -> dict[str, np.ndarray]:
    return {f"{prefix}_indptr": csr.indptr, f"{prefix}_indices": csr.indices,
            f"{prefix}_values": csr.values, f"{prefix}_num_cols": np.int64(csr.num_cols)}


def csr_from(prefix: str, arrays: dict[str, np.ndarray]) -> CSR:
    return CSR(arrays[f"{prefix}_indptr"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_values"],
               int(arrays[f"{prefix}_num_cols"]))



_STAMP = "_xcs_cache_stamp"


def _cache_path(path: str, kind: str) -> str:
    return f"{path}.{kind}.xcs-cache.npz"


def _stamp(path: str, kind: str, version: int) -> np.ndarray:
    st = os.stat(path)  # FileNotFoundError names the path
    kinds = ("single", "sparse", "labels")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return np.concatenate([np.array([version, kinds.index(kind), st.st_size], np.int64),
                           np.frombuffer(digest.digest(), np.int64)])


def _signature(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ino


def cached(path: str, kind: str, version: int, build: Callable[[], dict[str, np.ndarray]],
           stamp: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """`build()`'s arrays, from `<path>.<kind>.xcs-cache.npz` when its stamp matches the source.

    `version` is the reader's format version: bumping it invalidates every cache. A caller may pass
    its own `stamp` (int64 array, e.g. a content hash with its settings) instead of (kind, size, SHA-256).
    The stamp is taken before the source is parsed; a source that changes while it is parsed (its size,
    mtime or inode differ after) is not cached, so the next run parses it again. A cache
    that cannot be read is rebuilt; one that cannot be written (read-only directory, full disk) is
    skipped: caching is an optimisation, never a reason to fail.
    """
    before = _signature(path)  # FileNotFoundError names the path
    stamp = _stamp(path, kind, version) if stamp is None else np.concatenate([[version], np.asarray(stamp, np.int64)])
    cache_file = _cache_path(path, kind)
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)  # missing or corrupt: rebuild
    with contextlib.suppress(*unreadable), np.load(cache_file, allow_pickle=False) as z:
        if _STAMP in z.files and np.array_equal(z[_STAMP], stamp):
            return {k: z[k] for k in z.files if k != _STAMP}
    arrays = build()
    if _signature(path) != before:  # changed while it was read: these arrays may mix two versions
        return arrays
    tmp = None
    with contextlib.suppress(OSError):  # not writable (read-only directory, full disk): no cache
        try:
            fd, tmp = tempfile.mkstemp(prefix=os.path.basename(cache_file) + ".", suffix=".tmp",
                                       dir=os.path.dirname(os.path.abspath(cache_file)))
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays, **{_STAMP: stamp})
            os.chmod(tmp, os.stat(path).st_mode & 0o666)  # mkstemp makes it private; match the source
            os.replace(tmp, cache_file)  # atomic: readers see the old cache or the new, never half
            tmp = None
        finally:
            if tmp is not None:
                os.unlink(tmp)
    return arrays
