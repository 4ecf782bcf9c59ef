"""Describe the settings model in words: allowed values per key, and the settings table.

The README's settings table and the error messages both come from here, so they cannot
drift from the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

_TYPE_WORDS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
}


def field_at(model: type[BaseModel], loc: tuple[str, ...]) -> FieldInfo | None:
    current: Any = model
    info: FieldInfo | None = None
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    return info


def describe_field(info: FieldInfo) -> str:
    """``an integer 2–5``, ``one of disparity, depth``, ``a string or null``…"""
    annotation: Any = info.annotation
    optional = False
    if get_origin(annotation) in (Union, type(int | None)):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        text = "one of " + ", ".join(str(m.value) for m in annotation)
    elif get_origin(annotation) is tuple and _is_enum(get_args(annotation)[0]):
        text = "a list of " + ", ".join(str(m.value) for m in get_args(annotation)[0])
    else:
        text = _TYPE_WORDS.get(annotation, "a path") + _bounds(info)
    return text + (" or null" if optional else "")


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Enum)


def _bounds(info: FieldInfo) -> str:
    low: Any = None
    high: Any = None
    low_open = high_open = False
    for meta in info.metadata:
        if isinstance(meta, Ge):
            low = meta.ge
        elif isinstance(meta, Gt):
            low, low_open = meta.gt, True
        elif isinstance(meta, Le):
            high = meta.le
        elif isinstance(meta, Lt):
            high, high_open = meta.lt, True
        elif isinstance(meta, MinLen) and meta.min_length:
            return ", not empty"
    if low is not None and high is not None and not (low_open or high_open):
        return f" {low}–{high}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '≥'} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '≤'} {high}")
    return (" " + " and ".join(parts)) if parts else ""


def describe_allowed(model: type[BaseModel], loc: tuple[str, ...]) -> str:
    info = field_at(model, loc)
    return describe_field(info) if info is not None else "a known setting"


def iter_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every leaf key of the model as ``(dotted name, field)``, in declaration order."""
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from iter_fields(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", info


def settings_table(model: type[BaseModel], *, skip: tuple[str, ...] = ()) -> str:
    """A Markdown table of the model's keys: type/range, default, meaning."""
    rows = ["| key | type / range | default | meaning |", "|---|---|---|---|"]
    for dotted, info in iter_fields(model):
        if dotted.startswith(skip):
            continue
        default = info.default
        if isinstance(default, Enum):
            default = default.value
        elif isinstance(default, tuple):
            default = "[" + ", ".join(str(getattr(item, "value", item)) for item in default) + "]"
        if info.is_required():
            shown = "`<repo>/" + dotted.replace("_dir", "") + "`"
        elif default is None:
            shown = "`null`"
        else:
            shown = f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `{dotted}` | {describe_field(info)} | {shown} | {info.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    from config.model import JobSettings, Settings

    print(settings_table(JobSettings))
    print()
    print(settings_table(Settings, skip=("defaults.",)))
