"""What the machine is, how much memory the process has used (for results.json), and the allocator setting."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys

# glibc serves every allocation above 32 MiB with a fresh mmap, so a training step's large buffers
# (gradients, optimizer temporaries, scatter targets) are page-faulted in 4 KiB pages on every step.
# With this tunable glibc asks for transparent huge pages (2 MiB) for such memory; the README
# ("Running experiments") has the side-by-side training times and the commands that measured them.
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
HUGE_PAGES_OPT_OUT = "XCS_HUGE_PAGES"  # =0 keeps the process as started


def huge_pages_wanted(environ: dict[str, str], libc: tuple[str, str], thp_mode: str) -> bool:
    """Whether to restart with HUGE_PAGES_TUNABLE: glibc >= 2.35 (the tunable's first release), transparent
    huge pages not off, the tunable not set yet (so a restarted process never restarts again), no opt-out."""
    name, version = libc
    if environ.get(HUGE_PAGES_OPT_OUT, "1") == "0" or "glibc.malloc.hugetlb" in environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        new_enough = name == "glibc" and tuple(int(v) for v in version.split(".")[:2]) >= (2, 35)
    except ValueError:
        return False
    return new_enough and "[never]" not in thp_mode


def restart_with_huge_pages() -> None:
    """Re-executes this command once with HUGE_PAGES_TUNABLE added to GLIBC_TUNABLES, where it applies.

    glibc reads its tunables only at process start, hence the restart; call it before any work. The
    numbers computed are the same (only where memory comes from changes); results.json records the
    tunables in force. Opt out with XCS_HUGE_PAGES=0.
    """
    if sys.platform != "linux":
        return
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp_mode = f.read()
    except OSError:
        return
    if not huge_pages_wanted(dict(os.environ), platform.libc_ver(), thp_mode):
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(t for t in (env.get("GLIBC_TUNABLES"), HUGE_PAGES_TUNABLE) if t)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    import jax

    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml_collections", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),  # restart_with_huge_pages
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }
