"""Retry what fails for a moment ("database is locked", EAGAIN, ENOSPC) with backoff.

Permanent errors are raised at once; transient ones are retried a bounded number of
times, the delay doubling up to a cap.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from loguru import logger

T = TypeVar("T")

TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.ENOSPC, errno.EBUSY, errno.EINTR, errno.EMFILE})
TRANSIENT_SQLITE = ("database is locked", "database is busy", "disk i/o error")


def is_transient(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        return any(text in str(error).lower() for text in TRANSIENT_SQLITE)
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def with_backoff(
    action: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    max_delay: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``; transient errors are retried ``attempts`` times in all."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (OSError, sqlite3.OperationalError) as error:
            if not is_transient(error) or attempt == attempts:
                raise
            logger.warning("transient error ({}), retrying in {:.2f} s", error, delay)
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
