"""Messages from the libraries under the pipeline: transformers' advice to install
torchvision (which would replace the pinned torch) never reaches a person."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys

import pytest

import pipeline  # noqa: F401  (importing the package installs the filter)
from pipeline.models import TRANSFORMERS_IMPORT_LOGGER, quiet_torchvision_advice


def emitted(message: str) -> list[str]:
    """What transformers' import logger lets through for ``message``."""
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    library = logging.getLogger(TRANSFORMERS_IMPORT_LOGGER)
    handler = Catch()
    library.addHandler(handler)
    try:
        library.warning(message)
    finally:
        library.removeHandler(handler)
    return seen


def test_only_the_torchvision_advice_is_dropped() -> None:
    quiet_torchvision_advice()  # idempotent: a second call adds no second filter
    advice = (
        "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
        "`CLIPImageProcessorPil` for backward compatibility. Install torchvision to use the "
        "default backend, or import `CLIPImageProcessorPil` directly to silence this warning."
    )
    assert emitted(advice) == []
    assert emitted("some other warning") == ["some other warning"]
    assert len(logging.getLogger(TRANSFORMERS_IMPORT_LOGGER).filters) == 1


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed"
)
def test_loading_the_painterly_pipelines_prints_no_torchvision_advice() -> None:
    code = (
        "import pipeline.stylize\n"
        "import transformers\n"
        "transformers.CLIPImageProcessor, transformers.SiglipImageProcessor\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "torchvision" not in result.stderr
