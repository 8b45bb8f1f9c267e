"""xcs.system: the restart with glibc's huge-page tunable."""

import os
import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from xcs.system import HUGE_PAGES_TUNABLE, huge_pages_wanted

GLIBC = ("glibc", "2.36")
MADVISE = "always [madvise] never\n"


@pytest.mark.parametrize("environ,libc,thp,wanted", [
    ({}, GLIBC, MADVISE, True),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, GLIBC, MADVISE, True),  # added beside the user's own
    ({"GLIBC_TUNABLES": HUGE_PAGES_TUNABLE}, GLIBC, MADVISE, False),  # already restarted: never again
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, GLIBC, MADVISE, False),  # the user's choice stands
    ({"XCS_HUGE_PAGES": "0"}, GLIBC, MADVISE, False),
    ({}, ("glibc", "2.34"), MADVISE, False),  # before the tunable existed
    ({}, ("", ""), MADVISE, False),  # musl and others
    ({}, GLIBC, "always madvise [never]\n", False),
])
def test_huge_pages_wanted(environ, libc, thp, wanted):
    assert huge_pages_wanted(environ, libc, thp) == wanted


@pytest.mark.parametrize("opt_out", [False, True])
def test_restart_re_executes_the_command_once_with_the_tunable(opt_out):
    script = ("import os; from xcs.system import restart_with_huge_pages as restart; print('start', flush=True); "
              "restart(); print(os.environ.get('GLIBC_TUNABLES'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "XCS_HUGE_PAGES")}
    env.update({"PYTHONPATH": ROOT, **({"XCS_HUGE_PAGES": "0"} if opt_out else {})})
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    try:
        thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        thp = "[never]"
    if sys.platform == "linux" and huge_pages_wanted(env, platform.libc_ver(), thp):
        assert out == ["start", "start", HUGE_PAGES_TUNABLE]  # the same command, run again with the tunable
    else:
        assert out == ["start", "None"]
