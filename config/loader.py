"""Load settings through the precedence chain and remember where every value came from.

Lowest first: built-in defaults < ``config/strata.yaml`` < user config file < environment
(``STRATA_…``) < folder ``_defaults.yaml`` (outer folder first) < sidecar < ``--set``.
The first four make :class:`~config.model.Settings`; the rest refine one job's
:class:`~config.model.JobSettings` (see :func:`resolve_job_settings`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from config.errors import SettingsError
from config.model import JobSettings, Settings
from config.schema import describe_allowed, field_at

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = Path(__file__).resolve().with_name("strata.yaml")
ENV_PREFIX = "STRATA_"
ENV_CONFIG_FILE = "STRATA_CONFIG"
ENV_NESTING = "__"
FOLDER_DEFAULTS_NAME = "_defaults.yaml"
SIDECAR_SUFFIXES = (".yaml", ".yml")
BUILTIN = "built-in default"
PATH_KEYS = frozenset({"inbox", "outbox", "state_dir", "log.file"})

ModelT = TypeVar("ModelT", bound=BaseModel)


def user_config_file() -> Path:
    """Where a person's own config lives when ``--config`` is not given."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "strata" / "config.yaml"


@dataclass
class SettingsLayer:
    """One source of settings: nested values plus the origin of each dotted key."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved(Generic[ModelT]):
    """A validated settings object and the origin of each of its dotted keys."""

    value: ModelT
    origins: Mapping[str, str]

    def origin_of(self, key: str) -> str:
        return self.origins.get(key, BUILTIN)


# --- reading sources -------------------------------------------------------------------


def read_yaml_layer(path: Path, *, resolve_paths: bool = False) -> SettingsLayer:
    """Parse a YAML mapping with the safe loader, keeping each key's line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Cannot read settings file {path}: {exc}.") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        layer = SettingsLayer()
        if node is not None:
            if not isinstance(node, yaml.MappingNode):
                raise SettingsError(
                    f"{path} line {node.start_mark.line + 1}: settings must be a mapping of "
                    "key: value pairs.",
                    hint="Write one `key: value` per line, e.g. `num_layers: 4`.",
                )
            _collect(loader, node, path, (), layer)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    finally:
        loader.dispose()
    if resolve_paths:
        _resolve_relative_paths(layer, path.parent)
    return layer


def _collect(
    loader: yaml.SafeLoader,
    node: yaml.MappingNode,
    path: Path,
    prefix: tuple[str, ...],
    layer: SettingsLayer,
) -> None:
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise SettingsError(
                f"{path} line {key_node.start_mark.line + 1}: key {key!r} is not a name."
            )
        dotted = (*prefix, key)
        if isinstance(value_node, yaml.MappingNode):
            _collect(loader, value_node, path, dotted, layer)
            continue
        _set_nested(layer.values, dotted, loader.construct_object(value_node, deep=True))
        layer.origins[".".join(dotted)] = f"{path} line {key_node.start_mark.line + 1}"


def env_layer(environ: Mapping[str, str]) -> SettingsLayer:
    """``STRATA_WATCH__SETTLE_SECONDS=5`` sets ``watch.settle_seconds``; values parse as YAML."""
    layer = SettingsLayer()
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        dotted = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_NESTING))
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        if ".".join(dotted) in PATH_KEYS and value is not None:
            value = str(Path(str(value)).expanduser().resolve())
        _set_nested(layer.values, dotted, value)
        layer.origins[".".join(dotted)] = f"environment {name}"
    return layer


def overrides_layer(assignments: Iterable[str], *, origin: str = "--set") -> SettingsLayer:
    """``key=value`` pairs from the command line; values parse as YAML."""
    layer = SettingsLayer()
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise SettingsError(
                f"{origin} {assignment!r} is not of the form key=value.",
                hint="For example: --set num_layers=5",
            )
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        dotted = tuple(key.strip().split("."))
        _set_nested(layer.values, dotted, value)
        layer.origins[".".join(dotted)] = f"{origin} {key.strip()}"
    return layer


def builtin_layer() -> SettingsLayer:
    layer = SettingsLayer()
    for key, sub in (("inbox", "inbox"), ("outbox", "outbox"), ("state_dir", "state")):
        layer.values[key] = str(PROJECT_ROOT / sub)
        layer.origins[key] = BUILTIN
    return layer


# --- merging and validating ------------------------------------------------------------


def merge_layers(layers: Iterable[SettingsLayer]) -> SettingsLayer:
    merged = SettingsLayer()
    for layer in layers:
        for dotted, origin in layer.origins.items():
            parts = tuple(dotted.split("."))
            _set_nested(merged.values, parts, _get_nested(layer.values, parts))
            merged.origins[dotted] = origin
    return merged


def validate_layer(model: type[ModelT], layer: SettingsLayer) -> Resolved[ModelT]:
    try:
        value = model.model_validate(layer.values)
    except ValidationError as exc:
        raise SettingsError(
            " ".join(_describe_error(model, err, layer) for err in exc.errors()),
            hint="Fix the value named above; `strata config show` lists every key and its range.",
        ) from None
    return Resolved(value, dict(layer.origins))


def _describe_error(model: type[BaseModel], err: Any, layer: SettingsLayer) -> str:
    loc = tuple(str(part) for part in err["loc"])
    dotted = ".".join(loc)
    origin = _origin_for(layer, loc)
    where = f" in {origin}" if origin else ""
    if err["type"] == "extra_forbidden":
        return f"Unknown setting `{dotted}`{where}.{_did_you_mean(model, loc)}"
    if err["type"] == "missing":
        return f"Missing setting `{dotted}`{where}."
    allowed = describe_allowed(model, loc)
    value = err.get("input")
    return f"Setting `{dotted}` = {value!r}{where} is invalid: allowed {allowed}."


def _did_you_mean(model: type[BaseModel], loc: tuple[str, ...]) -> str:
    """`` Did you mean `num_layers`?`` for a misspelt key: the closest key beside it."""
    section = field_at(model, loc[:-1]) if len(loc) > 1 else None
    parent = section.annotation if section is not None else model
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return ""
    prefix = ".".join(loc[:-1]) + "." if len(loc) > 1 else ""
    candidates = {name: f"{prefix}{name}" for name in parent.model_fields}
    if model is Settings and len(loc) == 1:  # a per-job key at the top of a config file
        candidates.update({name: f"defaults.{name}" for name in JobSettings.model_fields})
    close = difflib.get_close_matches(loc[-1], list(candidates), n=1, cutoff=0.6)
    return f" Did you mean `{candidates[close[0]]}`?" if close else ""


def _origin_for(layer: SettingsLayer, loc: tuple[str, ...]) -> str | None:
    for end in range(len(loc), 0, -1):
        origin = layer.origins.get(".".join(loc[:end]))
        if origin:
            return origin
    return None


# --- public entry points ---------------------------------------------------------------


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Resolved[Settings]:
    """Built-in defaults < config/strata.yaml < user config < environment."""
    environ = os.environ if environ is None else environ
    layers = [builtin_layer(), read_yaml_layer(DEFAULT_CONFIG_FILE, resolve_paths=True)]
    explicit = config_file or (
        Path(environ[ENV_CONFIG_FILE]) if environ.get(ENV_CONFIG_FILE) else None
    )
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(
                f"Config file {explicit} does not exist.",
                hint="Pass an existing file to --config, or leave it out to use the defaults.",
            )
        layers.append(read_yaml_layer(explicit, resolve_paths=True))
    elif user_config_file().is_file():
        layers.append(read_yaml_layer(user_config_file(), resolve_paths=True))
    layers.append(env_layer(environ))
    return validate_layer(Settings, merge_layers(layers))


def find_sidecar(image: Path) -> Path | None:
    """``<stem>.yaml`` or ``<stem>.yml`` beside the image; both at once is an error."""
    found = [image.with_suffix(suffix) for suffix in SIDECAR_SUFFIXES]
    existing = [p for p in found if p.is_file()]
    if len(existing) > 1:
        raise SettingsError(
            f"Both {existing[0].name} and {existing[1].name} sit beside {image.name}.",
            hint="Keep one sidecar per photo.",
        )
    return existing[0] if existing else None


def folder_defaults_files(image: Path, *, root: Path | None) -> list[Path]:
    """``_defaults.yaml`` files from ``root`` (outermost) down to the image's folder."""
    folder = image.parent
    chain = [folder]
    if root is not None:
        root = root.resolve()
        current = folder.resolve()
        chain = []
        while True:
            chain.append(current)
            if current in (root, current.parent):
                break
            current = current.parent
        if chain[-1] != root:
            chain = [folder.resolve()]
    return [
        p / FOLDER_DEFAULTS_NAME for p in reversed(chain) if (p / FOLDER_DEFAULTS_NAME).is_file()
    ]


def resolve_job_settings(
    settings: Resolved[Settings],
    image: Path,
    *,
    inbox_root: Path | None = None,
    overrides: SettingsLayer | None = None,
) -> Resolved[JobSettings]:
    """The effective settings of one photo: defaults < folder defaults < sidecar < overrides."""
    base = SettingsLayer(values=settings.value.defaults.model_dump(mode="python"))
    for key in JobSettings.model_fields:
        base.origins[key] = settings.origin_of(f"defaults.{key}")
    layers = [base]
    layers += [read_yaml_layer(p) for p in folder_defaults_files(image, root=inbox_root)]
    sidecar = find_sidecar(image)
    if sidecar is not None:
        layers.append(read_yaml_layer(sidecar))
    if overrides is not None:
        layers.append(overrides)
    return validate_layer(JobSettings, merge_layers(layers))


# --- helpers ---------------------------------------------------------------------------


def _set_nested(target: dict[str, Any], dotted: tuple[str, ...], value: Any) -> None:
    for part in dotted[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[dotted[-1]] = value


def _get_nested(source: Mapping[str, Any], dotted: tuple[str, ...]) -> Any:
    value: Any = source
    for part in dotted:
        value = value[part]
    return value


def _resolve_relative_paths(layer: SettingsLayer, base: Path) -> None:
    for dotted in PATH_KEYS:
        parts = tuple(dotted.split("."))
        try:
            value = _get_nested(layer.values, parts)
        except (KeyError, TypeError):
            continue
        if isinstance(value, str):
            path = Path(value).expanduser()
            _set_nested(layer.values, parts, str((base / path).resolve()))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# --- YAML errors in words ----------------------------------------------------------------

_YAML_SYNTAX_HINT = (
    "Indent with spaces (no tabs), close every quote and bracket, and quote a value that "
    "holds ': ' or starts with a special character such as @, %, * or &."
)
_YAML_TAG_HINT = "Only plain YAML values are allowed (no tags such as !!python/object)."
_UNCLOSED = {  # PyYAML's context for a construct opened and never closed
    "while scanning a quoted scalar": "a quote that is never closed",
    "while parsing a flow sequence": "a [ that is never closed",
    "while parsing a flow mapping": "a { that is never closed",
}


def yaml_error(path: Path, exc: yaml.YAMLError) -> SettingsError:
    """One line for a YAML file that does not parse: the file, the line, the problem in
    words. Only a tag (``!!python/…``) gets the hint about tags."""
    hint = _YAML_TAG_HINT if isinstance(exc, yaml.constructor.ConstructorError) else None
    mark = exc.problem_mark if isinstance(exc, yaml.MarkedYAMLError) else None
    if mark is None or not isinstance(exc, yaml.MarkedYAMLError):
        return SettingsError(f"{path} is not valid YAML: {_one_line(exc)}.", hint=hint)
    line, problem = mark.line + 1, _yaml_problem(exc)
    opened = _UNCLOSED.get(exc.context or "")
    if opened and exc.context_mark is not None:  # point at where it was opened
        line, problem = exc.context_mark.line + 1, opened
    return SettingsError(
        f"{path} is not valid YAML at line {line}: {problem}.", hint=hint or _YAML_SYNTAX_HINT
    )


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem, in words for the mistakes people make most."""
    problem = exc.problem or "the YAML cannot be read"
    if "'\\t'" in problem:
        return "a tab character (YAML indents with spaces only)"
    if problem == "mapping values are not allowed here":
        return "a ':' where none can stand (a key indented under a value, or an unquoted ': ')"
    if problem.startswith("expected <block end>"):
        return "the indentation does not line up with the keys above"
    if isinstance(exc, yaml.constructor.ConstructorError) and " for the tag " in problem:
        tag = problem.split(" for the tag ", 1)[1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return f"the tag {tag} is not allowed"
    return problem
