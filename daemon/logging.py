"""The daemon's logging: :mod:`daemon.logs` set-up, plus huey's and watchdog's records.

Those libraries log through the standard library; their warnings and errors are routed
into loguru (their INFO chatter is dropped). Called by entry points only.
"""

from __future__ import annotations

import logging
from types import FrameType

from loguru import logger

from config.model import LogSettings
from daemon.logs import configure_logging

LIBRARIES = ("huey", "watchdog")


class _ToLoguru(logging.Handler):
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


def configure_daemon_logging(settings: LogSettings) -> None:
    configure_logging(settings)
    for name in LIBRARIES:
        library = logging.getLogger(name)
        library.handlers = [_ToLoguru()]
        library.setLevel(logging.WARNING)
        library.propagate = False
