"""The settings model: every key a user can set, its type, range and default.

Per-job keys live in :class:`JobSettings` (sidecars, ``_defaults.yaml``, the ``defaults:``
section); daemon keys in :class:`Settings`. Numbers, booleans and strings are
validated strictly (``"4"`` is not a number, ``1`` is not ``true``): YAML, environment and
``--set`` values are parsed as YAML first, so they arrive typed.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)


class Mode(StrEnum):
    PHOTO_REALISTIC = "photo-realistic"
    PAINTERLY = "painterly"


class DepthMapKind(StrEnum):
    DISPARITY = "disparity"
    DEPTH = "depth"


class Structure(StrEnum):
    CONTROLNET = "controlnet"
    NONE = "none"


class Export(StrEnum):
    """Extra files for layered-art tools, in the order they are written."""

    PSD = "psd"  # layers.psd: Photoshop, After Effects, Krita, GIMP, Affinity
    ORA = "ora"  # layers.ora: OpenRaster (Krita, GIMP, MyPaint)
    GLB = "glb"  # scene.glb: glTF cards and a camera (Blender, three.js, game engines)
    HTML = "html"  # viewer.html: the stack moved by the pointer, beside the layer PNGs


class Device(StrEnum):
    AUTO = "auto"
    CUDA = "cuda"
    MPS = "mps"
    CPU = "cpu"


class QueueBackend(StrEnum):
    SQLITE = "sqlite"
    REDIS = "redis"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobSettings(_Strict):
    """Per-job settings: one photo's knobs."""

    num_layers: StrictInt = Field(
        4, ge=2, le=5, description="number of depth layers (fewer when the photo leaves one empty)"
    )
    style: StrictStr = Field("oil painting", min_length=1, description="painterly: the style")
    strength: StrictFloat = Field(
        0.5, ge=0.0, le=1.0, description="painterly: how far from the photo"
    )
    seed: StrictInt = Field(
        42, ge=0, description="painterly: same seed + input + settings = same pixels"
    )
    depth_map: StrictStr | None = Field(
        None, description="a `*.depth.*` file in the image's folder to use instead of a model"
    )
    depth_map_kind: DepthMapKind = Field(
        DepthMapKind.DISPARITY, description="disparity: larger = nearer; depth: larger = farther"
    )
    max_side: StrictInt = Field(
        2048, ge=256, le=8192, description="longer side the pipeline works at"
    )
    structure: Structure = Field(
        Structure.CONTROLNET, description="painterly: keep the photo's geometry with ControlNet"
    )
    steps: StrictInt = Field(25, ge=1, le=150, description="painterly: diffusion steps")
    fast: StrictBool = Field(
        False, description="painterly: few-step LCM sampling and the tiny decoder"
    )
    priority: StrictInt = Field(
        0, ge=-100, le=100, description="daemon: pending jobs run higher first"
    )
    exports: tuple[Export, ...] = Field(
        (Export.HTML,), description="extra files for layered-art tools (see Exports); [] for none"
    )

    @field_validator("exports", mode="before")
    @classmethod
    def _export_names(cls, value: Any) -> Any:
        """``psd,html`` (``--set exports=psd,html``, ``exports: psd``) is a list of names;
        a name outside :class:`Export` is refused here, so the error names the key."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            allowed = {export.value for export in Export}
            if any(not isinstance(item, str) or item not in allowed for item in value):
                raise ValueError("unknown export")
        return value

    @field_validator("exports")
    @classmethod
    def _export_order(cls, value: tuple[Export, ...]) -> tuple[Export, ...]:
        """Each export once, in :class:`Export`'s order: ``[html, psd]`` and ``[psd, html]``
        are the same job (the same duplicate fingerprint)."""
        return tuple(export for export in Export if export in value)


class WatchSettings(_Strict):
    settle_seconds: StrictFloat = Field(
        2.0, ge=0.0, le=3600.0, description="a file is taken once still this long"
    )
    polling: StrictBool = Field(False, description="poll instead of OS events (network shares)")
    rescan_seconds: StrictFloat = Field(60.0, gt=0.0, description="full rescan for missed events")
    max_file_size_mb: StrictFloat = Field(
        50.0, gt=0.0, description="in MiB (1,048,576 bytes); larger files fail clearly"
    )
    max_pixels: StrictInt = Field(
        120_000_000, gt=0, description="larger images fail before decoding (bombs)"
    )


class QueueSettings(_Strict):
    backend: QueueBackend = Field(QueueBackend.SQLITE, description="where the queue lives")
    redis_url: StrictStr = Field("redis://localhost:6379/0", description="for backend redis")
    lease_seconds: StrictFloat = Field(
        30.0, gt=0.0, description="backend redis: a worker silent this long loses its job"
    )
    job_timeout_seconds: StrictFloat = Field(600.0, gt=0.0, description="a longer job is stopped")
    retries: StrictInt = Field(1, ge=0, le=10, description="re-runs of a crashed/timed-out job")
    shutdown_grace_seconds: StrictFloat = Field(
        30.0, ge=0.0, description="on stop, time a running job gets to finish"
    )


class ModelSettings(_Strict):
    depth: StrictStr = Field(
        "depth-anything/Depth-Anything-V2-Small-hf", description="depth model (id or folder)"
    )
    img2img: StrictStr = Field(
        "stable-diffusion-v1-5/stable-diffusion-v1-5", description="painterly restyle model"
    )
    controlnet: StrictStr = Field(
        "lllyasviel/control_v11f1p_sd15_depth", description="painterly depth ControlNet"
    )
    inpaint: StrictStr | None = Field(
        None, description="diffusion inpainting for hidden regions; null = built-in fill"
    )
    lcm_lora: StrictStr = Field("latent-consistency/lcm-lora-sdv1-5", description="fast mode LoRA")
    taesd: StrictStr = Field("madebyollin/taesd", description="fast mode tiny decoder")
    device: Device = Field(Device.AUTO, description="auto = cuda > mps > cpu")


class LogSettings(_Strict):
    level: LogLevel = Field(LogLevel.INFO, description="log level")
    file: Path | None = Field(None, description="rotating log file")


class Settings(_Strict):
    """Everything Strata reads from config files and the environment."""

    inbox: Path = Field(description="holds photo-realistic/ and painterly/")
    outbox: Path = Field(description="results: <mode>/<stem>/, failed/<stem>/")
    state_dir: Path = Field(description="job ledger and queue (SQLite)")
    notify: StrictBool = Field(False, description="desktop notification per finished job")
    watch: WatchSettings = WatchSettings()
    queue: QueueSettings = QueueSettings()
    models: ModelSettings = ModelSettings()
    log: LogSettings = LogSettings()
    defaults: JobSettings = JobSettings()

    def inbox_for(self, mode: Mode) -> Path:
        return self.inbox / mode.value

    def outbox_for(self, mode: Mode) -> Path:
        return self.outbox / mode.value

    @property
    def failed_dir(self) -> Path:
        return self.outbox / "failed"
