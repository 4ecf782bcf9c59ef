"""Shared parts of the benchmark harness: statistics, tables, the machine, the models.

Everything here is cheap to import (no torch at module level), so ``python -m bench`` can
parse its arguments, print tables and write JSON without loading a model library.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
RESULTS = ROOT / "results"
DEPTH_SMALL = CACHE / "depth-anything-v2-small-random"
DEPTH_BASE = CACHE / "depth-anything-v2-base-random"
DEPTH_TINY = CACHE / "depth-anything-tiny-random"
PAINTERLY_TINY = CACHE / "painterly-tiny"
VERSIONED = ("torch", "transformers", "diffusers", "numpy", "opencv-contrib-python-headless")


# --- statistics -------------------------------------------------------------------------------


def spread(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min and max of repeated measurements (and how many there were)."""
    if not values:
        raise ValueError("spread of no values")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "n": len(values),
    }


def fmt_spread(entry: dict[str, Any], unit: str = "") -> str:
    """``1.23 (1.10–1.40)`` for a :func:`spread`; just the median for a single value."""
    if entry["n"] == 1:
        return f"{entry['median']}{unit}"
    return f"{entry['median']}{unit} ({entry['min']}–{entry['max']})"


# --- tables ----------------------------------------------------------------------------------


def render_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table, columns as wide as their widest cell."""
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON, atomically (a half-written file never shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    temporary.replace(path)


# --- the machine -----------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident set so far, in bytes.

    Linux's ``VmHWM`` is this process's own: ``ru_maxrss`` also keeps the high-water mark
    of the process it was spawned from (``vfork`` + ``exec`` carries it over), so a child
    started by a large parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # not on Windows; macOS reports ru_maxrss in bytes

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return 0.0


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name.split("-")[0] if name.startswith("opencv") else name] = metadata.version(
                name
            )
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def environment() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "platform": platform.platform(),
        "versions": versions(),
    }


class LoadSampler:
    """The 1-minute load average, sampled in the background while a suite runs."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        values = self.samples or [os.getloadavg()[0]]
        return {
            "start": round(values[0], 2),
            "mean": round(statistics.fmean(values), 2),
            "max": round(max(values), 2),
            "end": round(values[-1], 2),
        }


def timestamp() -> float:
    return time.perf_counter()


# --- models ----------------------------------------------------------------------------------

DEPTH_MODELS = ("small", "base", "tiny")


def depth_model(kind: str) -> Path:
    """The folder of a random-weight Depth Anything model, built on first use."""
    if kind == "small":
        from bench.depth_forward import build_real_size_model

        return build_real_size_model(DEPTH_SMALL)
    if kind == "base":
        from bench.depth_forward import BASE, build_real_size_model

        return build_real_size_model(DEPTH_BASE, BASE)
    if kind == "tiny":
        if not (DEPTH_TINY / "config.json").is_file():
            tiny_models().build_tiny_depth_anything(DEPTH_TINY)
        return DEPTH_TINY
    raise ValueError(f"unknown depth model {kind!r}; one of {', '.join(DEPTH_MODELS)}")


def tiny_models() -> Any:
    """``tests/tiny_models.py``: the tiny random-weight builders the test suite uses (the
    smoke run's models; a checkout has them, an installed wheel does not)."""
    source = ROOT.parent / "tests" / "tiny_models.py"
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: the smoke run needs a source checkout")
    name = "strata_tiny_models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tiny_painterly(root: Path = PAINTERLY_TINY) -> Path:
    """sd15/, controlnet/, lcm-lora/ and taesd/ of tiny random-weight models, the layout
    :func:`bench.painterly.measure` reads."""
    if (root / "complete").is_file():
        return root
    tiny = tiny_models()
    root.mkdir(parents=True, exist_ok=True)
    tiny.build_tiny_sd15(root / "sd15")
    tiny.build_tiny_controlnet(root / "controlnet")
    tiny.build_tiny_lcm_lora(root / "lcm-lora")
    tiny.build_tiny_taesd(root / "taesd")
    (root / "complete").write_text("tiny\n", encoding="utf-8")
    return root
