"""The allocator setting that keeps freed image-sized blocks inside the process: made by
the process entry points, never by the pipeline package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon import cli
from daemon.allocator import keep_freed_memory, release_freed_memory

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"

# Page faults in the second of two rounds of allocating and freeing arrays of image sizes
# (24–28 MB): glibc's adaptive defaults map some afresh (~900–1500 faults of 4 KiB pages).
# The rounds run on the main thread or on a worker thread, as the pipeline's stages do.
_REFAULTS = """
import resource, sys, threading
import numpy as np
from daemon.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def one_round():  # over 64 MiB alive at once: more than one thread arena's heap holds
    a = np.ones(3_500_000)
    b = np.ones(3_500_000)
    c = np.ones(3_000_000)
    del a
    d = np.ones(3_500_000)
    del b, c, d
def two_rounds():
    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    one_round()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: None).start()  # the main heap is busy: a new arena
    worker = threading.Thread(target=two_rounds)
    worker.start()
    worker.join()
else:
    two_rounds()
"""


def refaults(mode: str, where: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _REFAULTS, mode, where],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
@pytest.mark.parametrize("where", ["main", "thread"])
def test_a_freed_image_sized_block_is_reused_without_page_faults(where: str) -> None:
    assert refaults("default", where) > 500
    assert refaults("keep", where) < 100


def test_release_and_keep_are_safe_to_call_anywhere() -> None:
    release_freed_memory()
    assert keep_freed_memory() is sys.platform.startswith("linux")
    release_freed_memory()


def test_every_strata_command_sets_it_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("keep") or True)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == ["keep"]


def test_the_pipeline_package_leaves_the_allocator_alone() -> None:
    for source in sorted(PIPELINE.rglob("*.py")):
        text = source.read_text()
        assert "ctypes" not in text, source
        assert "mallopt" not in text, source
