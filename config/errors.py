"""The one hierarchy of errors Strata raises on purpose.

Every error carries a ``reason`` (one sentence a person understands), a ``hint`` (what
to do about it) and the ``exit_code`` the CLI ends with when it stops a command (as
OCRmyPDF's exceptions do); the daemon writes reason, hint and stage into ``error.yaml``.
Anything that is not a ``StrataError`` is a bug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``strata`` exits with: a script can tell what to fix from the code alone."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INPUT = 3
    MODEL_MISSING = 4
    OUTPUT = 5
    INSTALL = 6
    QUEUE_UNREACHABLE = 7
    CANCELLED = 8
    INTERRUPTED = 130
    BROKEN_PIPE = 141

    @property
    def meaning(self) -> str:
        """One line for ``strata --help`` and the README."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "a job failed, or the command could not do what it was asked",
    ExitCode.USAGE: "bad usage: a wrong option or --set value, a bad settings file, path or job id",
    ExitCode.INPUT: "an input photo or its depth map cannot be used",
    ExitCode.MODEL_MISSING: "a configured model is not in the local cache (strata models pull)",
    ExitCode.OUTPUT: "an output folder cannot be written",
    ExitCode.INSTALL: "a library Strata needs is missing or broken",
    ExitCode.QUEUE_UNREACHABLE: "the shared Redis queue cannot be reached",
    ExitCode.CANCELLED: "the job was cancelled while it ran",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.BROKEN_PIPE: "the reader of the output went away (as `head` does)",
}


class StrataError(Exception):
    """Base class: something went wrong that a person can act on."""

    stage = "job"
    exit_code = ExitCode.FAILED
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
    exit_code = ExitCode.USAGE
    default_hint = "Fix the value named above and try again."


class UsageError(StrataError):
    """The command line names a file or folder that is not there, or holds nothing to do."""

    stage = "usage"
    exit_code = ExitCode.USAGE
    default_hint = "Check the paths on the command line."


class JobNotFoundError(StrataError):
    """A job id (or prefix) on the command line names no job, or more than one."""

    stage = "ledger"
    exit_code = ExitCode.USAGE
    default_hint = "Run `strata jobs` to list job ids (a unique prefix is enough)."


class JobStateError(StrataError):
    """The job is not in a state the command can act on (cancel a finished job, retry a
    running one)."""

    stage = "ledger"
    exit_code = ExitCode.FAILED
    default_hint = "Run `strata show JOB` to see the job's status."


class StartupError(StrataError):
    """The daemon cannot start on its folders (missing, unreadable or unwritable)."""

    stage = "startup"
    exit_code = ExitCode.FAILED
    default_hint = "Fix the folders in your config file (`strata config show`), then start again."


class ServiceError(StrataError):
    """A service manager (launchd, systemd) is missing or refused a command; the message
    carries the command to run by hand."""

    stage = "service"
    exit_code = ExitCode.FAILED
    default_hint = "Run the command named above by hand to see what the service manager says."


class InputError(StrataError):
    """The input photo (or its depth map) cannot be used."""

    stage = "decode"
    exit_code = ExitCode.INPUT
    default_hint = "Check that the file is a complete image in a supported format."


class ModelNotAvailableError(StrataError):
    """Model weights are not in the local cache and Strata never downloads during a job."""

    stage = "model"
    exit_code = ExitCode.MODEL_MISSING
    default_hint = "Run `strata models pull` to fetch the configured models, then retry."


class PipelineError(StrataError):
    """A pipeline stage failed on valid input: a bug or an exhausted resource."""

    stage = "pipeline"
    exit_code = ExitCode.FAILED


class OutputError(StrataError):
    """The outbox could not be written."""

    stage = "write"
    exit_code = ExitCode.OUTPUT
    default_hint = "Check that the outbox folder exists, is writable and has free space."


class JobCancelledError(StrataError):
    """The job was cancelled by the user while it ran."""

    stage = "cancelled"
    exit_code = ExitCode.CANCELLED
    default_hint = "Move the photo back into an inbox folder to process it again."


class InstallError(StrataError):
    """The Python environment lacks, or has a broken copy of, a library Strata needs."""

    stage = "install"
    exit_code = ExitCode.INSTALL
    default_hint = "Reinstall Strata's dependencies: pip install -c constraints.txt -e ."


class QueueUnreachableError(StrataError):
    """The shared queue and ledger (``queue.backend: redis``) cannot be reached."""

    stage = "queue"
    exit_code = ExitCode.QUEUE_UNREACHABLE
    default_hint = "Check that redis-server runs and that queue.redis_url points at it."
