"""Linux kernel sources: a C file's text -> the headers it includes.

Source: the kernel source tarball that Debian's `linux-source-6.1` installs
(`apt-get install -y linux-source-6.1`: /usr/src/linux-source-6.1.tar.xz), read as a stream (not unpacked).

One point per `.c` file with at least one `#include` (31,774 of 32,004 in 6.1.192). Input text = the file without
its `#include` lines (code and comments; the tf-idf tokens split identifiers at `_`). Labels = the included
headers: `<linux/slab.h>` as `linux/slab.h`, a quoted `"foo.h"` as its path from the tree's root
(`drivers/net/foo.h` for a file in drivers/net/), so a driver's private headers are labels of their own.

The shape (the default build's stats.json): 9.7 labels a point; `linux/module.h` is included by 42 % of the
files, the kernel's common headers by many; 80 % of the 22,948 labels have <= 5 training points (a driver's own
headers): a dominant head and a long tail. Rows are wide (a median of 233 tf-idf features, the longest 4,440).
"""

from __future__ import annotations

import argparse
import glob
import os
import posixpath
import re
import tarfile

from xcs.data.builders import common

SOURCE_GLOB = "/usr/src/linux-source-*.tar.*"
INCLUDE_LINE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"][^\n]*\n?', re.M)

# The statistics of the default builds, keyed by (name, sha256 of the tarball, common.Options.shape(): seed 0,
# test_frac 0.2, split seen, min_df 2, max_features 100000).
LINUX_6_1_DEBIAN = "cacdc3830989309d042083be3307969e55600ed7f908cf00df544c5ff50759a1"  # linux-source-6.1 6.1.192-3
_DEFAULTS = common.Options(out="").shape()
EXPECTED = {
    ("linux_includes", LINUX_6_1_DEBIAN, _DEFAULTS): dict(
        n_train=26439, n_test=5335, n_features=100000, n_labels=22948, avg_labels_per_point_train=9.743),
}


def default_source() -> str:
    """The last kernel source tarball under /usr/src by name ('' when there is none)."""
    found = sorted(glob.glob(SOURCE_GLOB))
    return found[-1] if found else ""


def file_point(path: str, text: str) -> common.Point | None:
    """The point of one C file (`path` from the tree's root), or None when it includes nothing."""
    labels = set()
    folder = posixpath.dirname(path)
    for kind, header in INCLUDE_LINE.findall(text):
        header = header.strip()
        labels.add(header if kind == "<" else posixpath.normpath(posixpath.join(folder, header)))
    labels.discard("")
    if not labels:
        return None
    return common.Point(INCLUDE_LINE.sub("", text), tuple(sorted(labels)))


def read_points(tarball: str) -> tuple[list[common.Point], int]:
    """(points by file path, number of .c files) of a kernel source tarball."""
    if not tarball or not os.path.isfile(tarball):
        raise common.SourceNotFound(
            f"kernel sources not found: {tarball or 'no ' + SOURCE_GLOB} (install them with "
            f"`apt-get install -y linux-source-6.1`, or pass --source TARBALL)")
    points, num_files = {}, 0
    with tarfile.open(tarball, "r|*") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".c"):
                path = member.name.split("/", 1)[1] if "/" in member.name else member.name  # from the tree's root
                point = file_point(path, archive.extractfile(member).read().decode("utf-8", errors="replace"))
                num_files += 1
                if point is not None:
                    points[path] = point
    return [points[path] for path in sorted(points)], num_files


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--source", default=default_source(),
                        help="the kernel source tarball (default: the last /usr/src/linux-source-*.tar.* by name, "
                             "Debian's linux-source-6.1)")


def build(name: str, args: argparse.Namespace, opts: common.Options) -> tuple[dict, dict | None]:
    """Writes the data set `name`; returns (statistics, the expected statistics or None when unknown)."""
    points, num_files = read_points(args.source)
    print(f"C files: {num_files}, with >= 1 include: {len(points)}")
    digest = common.sha256_files([args.source])
    source = {"tarball": os.path.abspath(args.source), "sha256": digest}
    stats = common.write_dataset(points, opts, name, source)
    return stats, EXPECTED.get((name, digest, opts.shape()))
