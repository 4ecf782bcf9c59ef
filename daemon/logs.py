"""The daemon's logging, set up once by each entry point (never by library code).

:func:`configure_logging`: loguru to stderr at ``log.level``, plus the rotating
``log.file`` if set. :func:`configure_daemon_logging` adds huey's and watchdog's records:
those libraries log through the standard library; their warnings and errors are routed
into loguru (their INFO chatter is dropped).
"""

from __future__ import annotations

import logging
import sys
from types import FrameType

from loguru import logger

from config.model import LogSettings

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[job]}</cyan> {message}"
)
ROTATION = "10 MB"
RETENTION = 5
LIBRARIES = ("huey", "watchdog")


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


def configure_daemon_logging(settings: LogSettings) -> None:
    """:func:`configure_logging`, and the warnings and errors of :data:`LIBRARIES`."""
    configure_logging(settings)
    for name in LIBRARIES:
        library = logging.getLogger(name)
        library.handlers = [_ToLoguru()]
        library.setLevel(logging.WARNING)
        library.propagate = False


class _ToLoguru(logging.Handler):
    """A standard-library record, logged by loguru at its level, from its caller's frame."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())
