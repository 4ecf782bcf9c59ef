"""What the pipeline is asked to do, and what it hands back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.model import JobSettings, Mode, ModelSettings, WatchSettings

ProgressCallback = Callable[[str, float], None]
"""Called with (stage name, fraction of the whole job done, 0.0–1.0)."""


@dataclass(frozen=True)
class Job:
    """One photo to turn into layers.

    ``input_path`` is read, never moved: the caller decides what happens to the original
    (the daemon removes it from the inbox after success; ``strata process`` leaves it).
    The result lands in ``output_root/<stem>/`` (``<stem>-2``… when another job's result
    holds the name), written to a temporary folder first and renamed into place.
    """

    job_id: str
    mode: Mode
    input_path: Path
    output_root: Path
    settings: JobSettings = field(default_factory=JobSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    limits: WatchSettings = field(default_factory=WatchSettings)
    settings_origins: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None  # ISO 8601; when the job was queued (None: now)

    @property
    def stem(self) -> str:
        return self.input_path.stem


@dataclass(frozen=True)
class JobResult:
    output_dir: Path
    manifest: dict[str, Any]
