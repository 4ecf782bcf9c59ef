"""Messages about the libraries under the pipeline: transformers' advice to install
torchvision (which would replace the pinned torch) never reaches a person, and an OpenCV
without its contrib modules is named, with the commands that fix it, before any job."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import pipeline  # noqa: F401  (importing the package installs the filter)
from config.errors import InstallError
from pipeline.models import TRANSFORMERS_IMPORT_LOGGER, quiet_torchvision_advice
from pipeline.opencv import check_opencv


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


@pytest.mark.slow  # a fresh interpreter imports diffusers' SD pipelines
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


# --- the OpenCV clash ------------------------------------------------------------------------


def versions(**installed: str) -> Callable[[str], str | None]:
    """A fake ``importlib.metadata.version`` over ``installed`` (dashes as underscores)."""
    return lambda name: installed.get(name.replace("-", "_"))


def test_the_installed_opencv_has_the_contrib_modules() -> None:
    check_opencv()  # the lock's opencv-contrib-python-headless: nothing to report


def test_opencv_python_beside_the_contrib_wheel_is_named_with_its_fix() -> None:
    plain_cv2 = types.SimpleNamespace(__file__="/venv/cv2/__init__.py")  # no contrib modules
    installed = versions(opencv_python="4.10.0.84", opencv_contrib_python_headless="5.1.0.95")
    with pytest.raises(InstallError) as caught:
        check_opencv(plain_cv2, installed)
    reason, hint = caught.value.reason, caught.value.hint
    assert "cv2.ximgproc, cv2.xphoto" in reason
    assert "opencv-python is installed beside opencv-contrib-python-headless" in reason
    pip = f"{sys.executable} -m pip"
    assert hint == (
        f"Run: {pip} uninstall -y opencv-python opencv-python-headless && "
        f"{pip} install --force-reinstall --no-deps opencv-contrib-python-headless==5.1.0.95"
    )


def test_a_cv2_without_contrib_and_no_clash_says_where_it_is() -> None:
    plain_cv2 = types.SimpleNamespace(__file__="/elsewhere/cv2.so", xphoto=object())
    with pytest.raises(InstallError) as caught:
        check_opencv(plain_cv2, versions())
    assert "(cv2.ximgproc) are missing" in caught.value.reason
    assert "/elsewhere/cv2.so" in caught.value.reason
    assert "install --force-reinstall --no-deps opencv-contrib-python-headless" in (
        caught.value.hint
    )


def test_the_daemon_refuses_to_start_on_a_broken_opencv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    from config.loader import load_settings
    from daemon.service import Daemon

    config = tmp_path / "config.yaml"
    config.write_text("inbox: inbox\noutbox: outbox\nstate_dir: state\n")
    monkeypatch.delattr(cv2, "ximgproc")
    daemon = Daemon(load_settings(config, environ={}))
    with pytest.raises(InstallError, match=r"cv2\.ximgproc"):
        daemon.start()
    assert not (tmp_path / "outbox").exists()  # refused before anything was touched
    assert not (tmp_path / "state").exists()
