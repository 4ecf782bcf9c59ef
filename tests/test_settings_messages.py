"""What a person reads when a settings file is wrong: one line with the file and line, the
problem in words, and a hint that fits it."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import SettingsError
from config.loader import load_settings, read_yaml_layer, resolve_job_settings


def yaml_failure(tmp_path: Path, text: str) -> SettingsError:
    sidecar = tmp_path / "beach.yaml"
    sidecar.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        read_yaml_layer(sidecar)
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('num_layers: 4\nstyle: "oil\nseed: 3\n', 2, "a quote that is never closed"),
        ("num_layers: [4\nseed: 1\n", 1, "a [ that is never closed"),
        ("num_layers: 4\n\tseed: 1\n", 2, "a tab character"),
        ("num_layers: 4\n  seed: 3\n", 2, "a ':' where none can stand"),
    ],
)
def test_a_yaml_syntax_error_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    error = yaml_failure(tmp_path, text)
    assert error.reason.startswith(f"{tmp_path / 'beach.yaml'} is not valid YAML at line {line}: ")
    assert problem in error.reason
    assert "\n" not in error.reason
    assert "<unicode string>" not in error.reason  # none of PyYAML's internals
    assert "^" not in error.reason
    assert "tag" not in error.hint  # the hint about tags is for tags only
    assert "quote" in error.hint


def test_a_tag_names_the_tag_and_gets_the_hint_about_tags(tmp_path: Path) -> None:
    error = yaml_failure(tmp_path, "num_layers: !!python/object/apply:os.system ['ls']\n")
    assert "at line 1: the tag !!python/object/apply:os.system is not allowed" in error.reason
    assert "no tags such as !!python/object" in error.hint


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("num_layer: 3\n", "`num_layers`"),
        ("sede: 3\n", "`seed`"),
    ],
)
def test_an_unknown_sidecar_key_gets_a_did_you_mean(
    tmp_path: Path, text: str, suggestion: str
) -> None:
    (tmp_path / "beach.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        resolve_job_settings(load_settings(environ={}), tmp_path / "beach.jpg")
    assert f"Did you mean {suggestion}?" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("watch:\n  settle_second: 3\n", "`watch.settle_seconds`"),
        ("outbx: /tmp/out\n", "`outbox`"),
        ("num_layers: 3\n", "`defaults.num_layers`"),  # a job key at the top of a config file
    ],
)
def test_an_unknown_config_key_gets_a_did_you_mean(
    tmp_path: Path, text: str, suggestion: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ={})
    assert f"Did you mean {suggestion}?" in caught.value.reason
    assert f"{config} line" in caught.value.reason


def test_a_key_like_no_other_gets_no_guess(tmp_path: Path) -> None:
    (tmp_path / "beach.yaml").write_text("zzzzqqq: 1\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        resolve_job_settings(load_settings(environ={}), tmp_path / "beach.jpg")
    assert "Did you mean" not in caught.value.reason
