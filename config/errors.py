"""The one hierarchy of errors Strata raises on purpose.

Every error carries a ``reason`` (one sentence a person understands) and a ``hint``
(what to do about it). The CLI maps the classes to exit codes; the daemon writes
them into ``error.yaml``. Anything that is not a ``StrataError`` is a bug.
"""

from __future__ import annotations


class StrataError(Exception):
    """Base class: something went wrong that a person can act on."""

    stage = "job"
    default_hint = "See the log for details."

    def __init__(self, reason: str, *, hint: str | None = None, stage: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint or self.default_hint
        if stage is not None:
            self.stage = stage

    def __str__(self) -> str:
        return f"{self.reason} {self.hint}"


class SettingsError(StrataError):
    """A settings file, sidecar, environment variable or --set value is invalid."""

    stage = "settings"
    default_hint = "Fix the value named above and try again."


class InputError(StrataError):
    """The input photo (or its depth map) cannot be used."""

    stage = "decode"
    default_hint = "Check that the file is a complete image in a supported format."


class ModelNotAvailableError(StrataError):
    """Model weights are not in the local cache and Strata never downloads during a job."""

    stage = "model"
    default_hint = "Run `strata models pull` to fetch the configured models, then retry."


class PipelineError(StrataError):
    """A pipeline stage failed on valid input: a bug or an exhausted resource."""

    stage = "pipeline"


class OutputError(StrataError):
    """The outbox could not be written."""

    stage = "write"
    default_hint = "Check that the outbox folder exists, is writable and has free space."


class JobCancelledError(StrataError):
    """The job was cancelled by the user while it ran."""

    stage = "cancelled"
    default_hint = "Move the photo back into an inbox folder to process it again."


class InstallError(StrataError):
    """The Python environment lacks, or has a broken copy of, a library Strata needs."""

    stage = "install"
    default_hint = "Reinstall Strata's dependencies: pip install -c constraints.txt -e ."


class QueueUnreachableError(StrataError):
    """The shared queue and ledger (``queue.backend: redis``) cannot be reached."""

    stage = "queue"
    default_hint = "Check that redis-server runs and that queue.redis_url points at it."
