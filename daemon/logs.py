"""Loguru set-up, done once by each entry point (never by library code)."""

from __future__ import annotations

import sys

from loguru import logger

from config.model import LogSettings

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[job]}</cyan> {message}"
)
ROTATION = "10 MB"
RETENTION = 5


def configure_logging(settings: LogSettings, *, stderr_level: str | None = None) -> None:
    """stderr at ``log.level`` (or ``stderr_level``), plus the rotating ``log.file`` if set."""
    logger.remove()
    logger.configure(extra={"job": "-"})
    logger.add(sys.stderr, level=stderr_level or settings.level.value, format=FORMAT)
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            settings.file,
            level=settings.level.value,
            format=FORMAT,
            rotation=ROTATION,
            retention=RETENTION,
            enqueue=True,
        )
