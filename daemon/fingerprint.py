"""Same bytes + same settings = same result: the keys that find an earlier result."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from config.errors import StrataError
from config.model import JobSettings, Mode, ModelSettings
from pipeline.formats import find_depth_file

CHUNK = 1 << 20
NOT_RESULT_SETTINGS = frozenset({"priority"})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def depth_map_for(image: Path, settings: JobSettings) -> Path | None:
    """The depth-map file the pipeline will use (:func:`pipeline.formats.find_depth_file`);
    None when there is none or the setting is invalid (the job then fails with that
    message when it runs)."""
    try:
        return find_depth_file(image, settings)
    except StrataError:
        return None


def settings_key(
    mode: Mode, settings: JobSettings, models: ModelSettings, depth_map: Path | None
) -> str:
    """Everything besides the input bytes that decides the result's pixels."""
    described = {
        "mode": mode.value,
        "settings": settings.model_dump(mode="json", exclude=set(NOT_RESULT_SETTINGS)),
        "models": models.model_dump(mode="json"),
        "depth_map": file_sha256(depth_map) if depth_map else None,
    }
    text = json.dumps(described, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
