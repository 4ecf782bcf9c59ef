"""Strata's settings: the model, the loader, and the one error hierarchy."""

from config.loader import Resolved, load_settings, resolve_job_settings
from config.model import (
    DepthMapKind,
    Device,
    JobSettings,
    Mode,
    QueueBackend,
    Settings,
    Structure,
)

__all__ = [
    "DepthMapKind",
    "Device",
    "JobSettings",
    "Mode",
    "QueueBackend",
    "Resolved",
    "Settings",
    "Structure",
    "load_settings",
    "resolve_job_settings",
]
