"""The allocator setting that keeps freed image-sized blocks inside the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.memory import keep_freed_memory, release_freed_memory

# Page faults in the second of two rounds of allocating and freeing arrays of mixed image
# sizes (8–28 MB): glibc's adaptive defaults map some afresh (~1500 faults of 4 KiB pages).
_REFAULTS = """
import resource, sys
import numpy as np
from pipeline.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def one_round():
    a = np.ones(3_000_000)
    b = np.ones(1_000_000)
    del a
    c = np.ones(2_000_000)
    d = np.ones(3_500_000)
    del b, c, d
one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
one_round()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def refaults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _REFAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_a_freed_image_sized_block_is_reused_without_page_faults() -> None:
    assert refaults("default") > 1000
    assert refaults("keep") < 100


def test_release_and_keep_are_safe_to_call_anywhere() -> None:
    release_freed_memory()
    assert keep_freed_memory() is sys.platform.startswith("linux")
    release_freed_memory()
