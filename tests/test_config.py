"""Settings: precedence, provenance, and the message every bad value gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import SettingsError
from config.loader import (
    load_settings,
    overrides_layer,
    read_yaml_layer,
    resolve_job_settings,
)
from config.model import JobSettings, Settings
from config.schema import iter_fields, settings_table

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_default_file_documents_every_key() -> None:
    text = (REPO / "config" / "strata.yaml").read_text(encoding="utf-8")
    for dotted, _info in iter_fields(Settings):
        assert f"{dotted.split('.')[-1]}:" in text, dotted


def test_default_file_values_equal_the_model_defaults() -> None:
    resolved = load_settings(environ={})
    assert resolved.value.defaults == JobSettings()
    assert resolved.value.watch.max_file_size_mb == 50.0
    assert resolved.value.queue.job_timeout_seconds == 600.0
    assert resolved.value.inbox == REPO / "inbox"


def test_readme_settings_table_matches_the_model() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings_table(JobSettings) in readme


def test_precedence_and_origins(tmp_path: Path) -> None:
    user = write(
        tmp_path / "user.yaml", "defaults:\n  num_layers: 3\n  seed: 7\nwatch:\n  polling: true\n"
    )
    resolved = load_settings(
        user, environ={"STRATA_DEFAULTS__SEED": "9", "STRATA_OUTBOX": str(tmp_path / "o")}
    )
    assert resolved.value.defaults.num_layers == 3
    assert resolved.value.defaults.seed == 9
    assert resolved.value.outbox == tmp_path / "o"
    assert resolved.origin_of("defaults.num_layers") == f"{user} line 2"
    assert resolved.origin_of("defaults.seed") == "environment STRATA_DEFAULTS__SEED"
    assert resolved.origin_of("watch.settle_seconds").startswith(
        str(REPO / "config" / "strata.yaml")
    )

    inbox = tmp_path / "inbox" / "painterly"
    image = inbox / "trip" / "beach.jpg"
    write(inbox / "_defaults.yaml", "num_layers: 5\nstyle: watercolor\n")
    write(inbox / "trip" / "_defaults.yaml", "style: gouache\n")
    write(inbox / "trip" / "beach.yaml", "strength: 0.8\n")
    job = resolve_job_settings(
        resolved, image, inbox_root=inbox, overrides=overrides_layer(["seed=1"])
    )
    assert (job.value.num_layers, job.value.style, job.value.strength, job.value.seed) == (
        5,
        "gouache",
        0.8,
        1,
    )
    assert job.origins["style"] == f"{inbox / 'trip' / '_defaults.yaml'} line 1"
    assert job.origins["strength"] == f"{inbox / 'trip' / 'beach.yaml'} line 1"
    assert job.origins["seed"] == "--set seed"


def test_relative_paths_are_relative_to_their_file(tmp_path: Path) -> None:
    config = write(tmp_path / "conf" / "strata.yaml", "inbox: ../in\nlog:\n  file: logs/s.log\n")
    resolved = load_settings(config, environ={})
    assert resolved.value.inbox == tmp_path / "in"
    assert resolved.value.log.file == tmp_path / "conf" / "logs" / "s.log"


BAD_SIDECARS = [
    ("num_layers: 9\n", "num_layers", "an integer 2–5"),
    ("num_layers: 1\n", "num_layers", "an integer 2–5"),
    ("num_layers: four\n", "num_layers", "an integer 2–5"),
    ("num_layers: 4.5\n", "num_layers", "an integer 2–5"),
    ('num_layers: "4"\n', "num_layers", "an integer 2–5"),
    ("strength: 1.5\n", "strength", "a number 0.0–1.0"),
    ("strength: -0.1\n", "strength", "a number 0.0–1.0"),
    ("strength: lots\n", "strength", "a number 0.0–1.0"),
    ("seed: -1\n", "seed", "an integer ≥ 0"),
    ("seed: 1.5\n", "seed", "an integer ≥ 0"),
    ("style: 12\n", "style", "a string"),
    ("style: ''\n", "style", "a string"),
    ("depth_map: 3\n", "depth_map", "a string or null"),
    ("depth_map_kind: inverse\n", "depth_map_kind", "one of disparity, depth"),
    ("max_side: 100\n", "max_side", "an integer 256–8192"),
    ("max_side: 9000\n", "max_side", "an integer 256–8192"),
    ("structure: lines\n", "structure", "one of controlnet, none"),
    ("steps: 0\n", "steps", "an integer 1–150"),
    ("steps: 151\n", "steps", "an integer 1–150"),
    ("fast: 1\n", "fast", "true or false"),
    ("fast: maybe\n", "fast", "true or false"),
    ("priority: 101\n", "priority", "an integer -100–100"),
    ("priority: high\n", "priority", "an integer -100–100"),
]


@pytest.mark.parametrize(("text", "key", "allowed"), BAD_SIDECARS)
def test_bad_sidecar_value_names_key_value_range_file_and_line(
    tmp_path: Path, text: str, key: str, allowed: str
) -> None:
    image = tmp_path / "beach.jpg"
    sidecar = write(tmp_path / "beach.yaml", "# settings\n" + text)
    with pytest.raises(SettingsError) as caught:
        resolve_job_settings(load_settings(environ={}), image)
    reason = caught.value.reason
    assert f"`{key}`" in reason
    assert allowed in reason
    assert f"{sidecar} line 2" in reason
    assert caught.value.hint


def test_unknown_key_is_named_with_file_and_line(tmp_path: Path) -> None:
    sidecar = write(tmp_path / "beach.yml", "num_layers: 3\nlayers: 4\n")
    with pytest.raises(SettingsError, match=r"Unknown setting `layers` in .*beach.yml line 2"):
        resolve_job_settings(load_settings(environ={}), tmp_path / "beach.jpg")
    assert sidecar.exists()


def test_yaml_python_tag_is_refused_without_building_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write(
        tmp_path / "beach.yaml",
        f"num_layers: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    with pytest.raises(SettingsError, match="not valid YAML"):
        resolve_job_settings(load_settings(environ={}), tmp_path / "beach.jpg")
    assert not marker.exists()


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "a: [1,\n"])
def test_malformed_settings_files(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "x.yaml", text)
    with pytest.raises(SettingsError, match=str(path.name)):
        read_yaml_layer(path)


def test_both_sidecars_is_ambiguous(tmp_path: Path) -> None:
    write(tmp_path / "beach.yaml", "seed: 1\n")
    write(tmp_path / "beach.yml", "seed: 2\n")
    with pytest.raises(SettingsError, match=r"beach\.yaml and beach\.yml"):
        resolve_job_settings(load_settings(environ={}), tmp_path / "beach.jpg")


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="environment STRATA_WATCH__SETTLE_SECONDS"):
        load_settings(environ={"STRATA_WATCH__SETTLE_SECONDS": "soon"})


def test_set_without_equals_is_refused() -> None:
    with pytest.raises(SettingsError, match="key=value"):
        overrides_layer(["num_layers"])


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_config_show_names_every_key_value_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from daemon.cli import main

    config = write(tmp_path / "c.yaml", "watch:\n  polling: true\n")
    monkeypatch.setenv("STRATA_DEFAULTS__NUM_LAYERS", "3")
    assert main(["config", "show", "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {key for key, _ in iter_fields(Settings)}
    assert shown["watch.polling"] == {"value": True, "source": f"{config} line 2"}
    assert shown["defaults.num_layers"]["source"] == "environment STRATA_DEFAULTS__NUM_LAYERS"
    assert main(["config", "show", "--config", str(config)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("watch.polling"))
    assert "true" in line
    assert f"# {config} line 2" in line
