"""Process-wide settings of a running node (``tzsb.app.tune_runtime``)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

#: Rounds of request-sized buffers in a worker thread (the server handles requests in one): the
#: process's page faults from the second round on.
_ROUNDS = """
import resource, sys, threading
from tzsb.app import keep_freed_memory

set_now = keep_freed_memory() if sys.argv[1] == "tuned" else False
counted = []

def requests():
    for round_ in range(20):
        if round_ == 1:
            counted.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        buffers = [bytes(700_000) for _ in range(8)]
        del buffers
    counted.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

worker = threading.Thread(target=requests)
worker.start()
worker.join()
print(set_now, counted[1] - counted[0])
"""


def _without_malloc_settings() -> dict[str, str]:
    return {
        name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"
    }


def _faults(mode: str) -> tuple[str, int]:
    environment = _without_malloc_settings()
    done = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True, env=environment
    )
    set_now, faults = done.stdout.split()
    return set_now, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_request_buffers_are_reused_without_page_faults() -> None:
    default_set, default_faults = _faults("default")
    tuned_set, tuned_faults = _faults("tuned")
    assert (default_set, tuned_set) == ("False", "True")
    # 19 rounds of 8 × 700 KB: about 26,000 fresh pages by default.
    assert default_faults > 10_000
    assert tuned_faults < default_faults / 10


@pytest.mark.parametrize(
    ("setting", "set_here"),
    [
        ({"MALLOC_TRIM_THRESHOLD_": "131072"}, False),
        ({"MALLOC_MMAP_THRESHOLD_": "131072"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072"}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, True),
    ],
)
def test_an_operators_malloc_thresholds_win(setting: dict[str, str], set_here: bool) -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    done = subprocess.run(
        [sys.executable, "-c", "from tzsb.app import keep_freed_memory; print(keep_freed_memory())"],
        capture_output=True,
        text=True,
        check=True,
        env={**_without_malloc_settings(), **setting},
    )
    assert done.stdout.strip() == str(set_here)
