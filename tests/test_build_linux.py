"""python -m xcs.data.build linux_includes on a tiny kernel-like tarball written here (no Debian package)."""

from __future__ import annotations

import io
import json
import tarfile

from xcs.data import build, texts
from xcs.data.xmc_repo import read_single_file

FILES = {  # path in the tarball -> content
    "linux-x/kernel/fork.c": '#include <linux/slab.h>\n#include "sched.h"\n  # include <linux/mm.h> /* pages */\n'
                             "int fork_task(void) { return kmalloc_task(); }\n",
    "linux-x/kernel/exit.c": '#include <linux/slab.h>\n#include "../mm/internal.h"\n'
                             "void exit_task(void) { kfree_task(); }\n",
    "linux-x/mm/page.c": "#include <linux/mm.h>\n// a page allocator: kmalloc\nint alloc_page(void);\n",
    "linux-x/lib/empty.c": "/* includes nothing */\nint x;\n",
    "linux-x/include/linux/slab.h": "void *kmalloc(int);\n",  # a header: not a point
}


def fake_tarball(path):
    with tarfile.open(path, "w:xz") as archive:
        for name, content in FILES.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_includes_by_hand(tmp_path, capsys):
    tarball = fake_tarball(tmp_path / "linux-source-x.tar.xz")
    out = tmp_path / "o"
    assert build.main(["linux_includes", f"--source={tarball}", f"--out={out}", "--test-frac=0", "--texts",
                       "--min-df=1"]) == 0
    assert "C files: 4, with >= 1 include: 3" in capsys.readouterr().out
    # Points by path: kernel/exit.c, kernel/fork.c, mm/page.c (lib/empty.c includes nothing). Quoted headers are
    # paths from the tree's root; labels by training frequency, ties by name.
    assert (out / "labels.txt").read_text().split() == [
        "linux/mm.h", "linux/slab.h", "kernel/sched.h", "mm/internal.h"]
    _, labels = read_single_file(str(out / "train.txt"), cache=False)
    assert labels.to_lists() == [[1, 3], [0, 1, 2], [0]]
    # The text is the file without its include lines (the indented `# include` too).
    train_texts = texts.read_lines(str(out / "train_texts.txt"))
    assert train_texts == ["void exit_task(void) { kfree_task(); }",
                           "int fork_task(void) { return kmalloc_task(); }",
                           "// a page allocator: kmalloc int alloc_page(void);"]
    assert not any("include" in t or "slab" in t for t in train_texts)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_train"] == 3 and stats["avg_labels_per_point_train"] == 2.0 and stats["source"]["sha256"]


def test_missing_source_is_one_line_and_exit_2(tmp_path, capsys):
    assert build.main(["linux_includes", f"--source={tmp_path / 'none.tar.xz'}", f"--out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install -y linux-source-6.1" in err
    assert not (tmp_path / "o").exists()
