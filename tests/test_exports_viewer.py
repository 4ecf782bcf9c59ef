"""viewer.html in a real headless Chromium, opened from its file as a double click opens it:
no console error, no request but its own folder's files, every layer shown, and the pointer
moves each layer by the parallax preview's amplitude.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in NUL, commands on fd 3, replies and events on fd 4), so no driver
library and no browser download are needed. The test is skipped when no ``chromium`` is
installed (.ci/run installs Debian's).
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import math
import os
import select
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bench.scenes import make_scene
from config.model import JobSettings, Mode
from pipeline import Job, run
from pipeline.io import save_gray16_png
from pipeline.preview import PARALLAX_AMPLITUDE

WIDTH, HEIGHT = 320, 240
WINDOW = (800, 600)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,  # a browser start and a job: about 10 s on 2 shared cores
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH"),
]

FLAGS = [
    "--headless=new",
    "--remote-debugging-pipe",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "about:blank",
]


class Chromium:
    """A headless Chromium and one page of it, over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        commands_read, replies_write = _above(commands_read), _above(replies_write)
        # Spawned with the pipe ends moved to fds 3 and 4, where Chromium expects them.
        with open(os.devnull, "wb") as quiet:
            self.pid = os.posix_spawn(
                binary,
                [binary, f"--user-data-dir={profile}", *FLAGS],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, quiet.fileno(), 1),  # before 3 and 4: it may be one
                    (os.POSIX_SPAWN_DUP2, quiet.fileno(), 2),
                    (os.POSIX_SPAWN_DUP2, commands_read, 3),
                    (os.POSIX_SPAWN_DUP2, replies_write, 4),
                ],
            )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def send(self, method: str, *, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") != self._last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_event(self, method: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._receive(deadline))
        return next(event for event in self.events if event.get("method") == method)

    def wait_until(self, expression: str, *, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            time.sleep(0.05)

    def screenshot(self) -> np.ndarray:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            return np.asarray(image.convert("RGB"))

    def events_named(self, *prefixes: str) -> list[dict[str, Any]]:
        return [e for e in self.events if str(e.get("method", "")).startswith(prefixes)]

    def close(self) -> None:
        try:
            self.session = ""
            self.send("Browser.close", timeout=10)
        except (OSError, RuntimeError, TimeoutError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._commands)
        os.close(self._replies)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe (did it start?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed


def _above(fd: int, floor: int = 10) -> int:
    """``fd`` moved to a number >= ``floor``, so duplicating it onto 3 or 4 cannot overwrite
    the other pipe end first."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return moved


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished job of a 4-surface scene with the default exports (the viewer alone)."""
    folder = tmp_path_factory.mktemp("viewer")
    scene = make_scene(num_surfaces=4, seed=3, width=WIDTH, height=HEIGHT)
    photo = folder / "scene.png"
    Image.fromarray(np.round(scene.image * 255).astype(np.uint8)).save(photo)
    save_gray16_png(folder / "scene.depth.png", scene.nearness)
    settings = JobSettings()
    return run(Job("viewer-test", Mode.PHOTO_REALISTIC, photo, folder / "out", settings)).output_dir


@pytest.fixture(scope="module")
def page(job: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """viewer.html opened in Chromium from its file, every layer decoded."""
    assert CHROMIUM is not None
    browser = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        width, height = WINDOW
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.send("Page.navigate", url=(job / "viewer.html").as_uri())
        browser.wait_for_event("Page.loadEventFired")
        count = len(json.loads((job / "manifest.json").read_text())["layers"])
        browser.wait_until(f"document.documentElement.dataset.shown === '{count}'")
        browser.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        yield browser
    finally:
        browser.close()


def manifest_of(job: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((job / "manifest.json").read_text())
    return manifest


def stage_box(page: Chromium) -> tuple[int, int, int, int]:
    box = page.evaluate(
        "(() => { const r = document.getElementById('stage').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    left, top, width, height = (round(v) for v in box)
    return left, top, width, height


def shifts(page: Chromium) -> list[tuple[float, float]]:
    """Each layer image's (dx, dy) in CSS pixels, from its computed transform."""
    matrices = page.evaluate(
        "Array.from(document.querySelectorAll('#stage img'))"
        ".map(img => { const m = new DOMMatrix(getComputedStyle(img).transform);"
        " return [m.e, m.f]; })"
    )
    return [(float(dx), float(dy)) for dx, dy in matrices]


def move_pointer(page: Chromium, x: float, y: float) -> list[tuple[float, float]]:
    """Move the mouse and wait for the stack to come to rest there."""
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    deadline = time.monotonic() + 10
    previous = shifts(page)
    while True:
        time.sleep(0.1)
        current = shifts(page)
        if current == previous and current != [(0.0, 0.0)] * len(current):
            return current
        if time.monotonic() > deadline:
            raise TimeoutError("the layers did not settle")
        previous = current


def test_loads_with_no_error_and_no_request_outside_its_folder(page: Chromium, job: Path) -> None:
    layers = [job / layer["file"] for layer in manifest_of(job)["layers"]]
    requested = {
        e["params"]["request"]["url"] for e in page.events_named("Network.requestWillBeSent")
    }
    assert requested == {(job / "viewer.html").as_uri(), *(path.as_uri() for path in layers)}
    errors = [
        e
        for e in page.events_named("Runtime.exceptionThrown", "Runtime.consoleAPICalled")
        if e["method"] == "Runtime.exceptionThrown" or e["params"]["type"] in ("error", "assert")
    ]
    errors += [
        e for e in page.events_named("Log.entryAdded") if e["params"]["entry"]["level"] == "error"
    ]
    assert errors == []


def test_shows_every_layer_and_at_rest_the_photo(page: Chromium, job: Path) -> None:
    files = [layer["file"] for layer in manifest_of(job)["layers"]]
    images = page.evaluate(
        "Array.from(document.querySelectorAll('#stage img'))"
        ".map(img => [img.getAttribute('src'), img.complete, img.naturalWidth, img.naturalHeight])"
    )
    assert images == [[name, True, WIDTH, HEIGHT] for name in files]
    assert f"{len(files)} layers" in page.evaluate("document.getElementById('caption').textContent")
    left, top, width, height = stage_box(page)
    assert width / height == pytest.approx(WIDTH / HEIGHT, abs=0.01)
    assert width >= WINDOW[0] - 2 or height >= WINDOW[1] * 0.8, "the photo fills the window"
    shown = page.screenshot()[top : top + height, left : left + width].astype(np.float64)
    with Image.open(job / "source.png") as photo:
        expected = np.asarray(photo.convert("RGB").resize((width, height), Image.BILINEAR))
    assert np.abs(shown - expected).mean() < 4.0, "at rest the layers recompose the photo"


def test_the_pointer_moves_each_layer_by_the_preview_amplitude(page: Chromium, job: Path) -> None:
    parallax = [layer["parallax"] for layer in manifest_of(job)["layers"]]
    _left, _top, width, _height = stage_box(page)
    before = page.screenshot()
    window_width, window_height = WINDOW
    # The right edge, halfway down: the eye to the right, nearer layers move left.
    x = window_width - 1
    moved = move_pointer(page, x, window_height / 2)
    aim = 2 * x / window_width - 1
    for (dx, dy), share in zip(moved, parallax, strict=True):
        assert dx == pytest.approx(-aim * PARALLAX_AMPLITUDE * width * share, abs=0.01)
        assert dy == pytest.approx(0.0, abs=0.01)
    assert moved[-1][0] < -0.9 * PARALLAX_AMPLITUDE * width, "the foreground moves the full way"
    after = page.screenshot()
    assert np.abs(after.astype(np.int16) - before.astype(np.int16)).max() > 64
    # The top edge: the same reach upwards; the pointer's offset never exceeds the unit disc.
    corner = move_pointer(page, window_width - 1, 0)
    for (dx, dy), share in zip(corner, parallax, strict=True):
        reach = PARALLAX_AMPLITUDE * width * share
        assert math.hypot(dx, dy) == pytest.approx(reach, abs=0.02)
        assert dy > 0 or share == 0
