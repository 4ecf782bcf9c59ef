"""What is left in the inbox, the job folder and failed/ after a job ends: nothing of the
user's is ever overwritten or lost."""

from __future__ import annotations

from pathlib import Path

import yaml

from daemon.lifecycle import (
    ErrorReport,
    clear_inbox_after_success,
    move_to_failed,
    prune_batch_folder,
)


def make(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_finished_batch_folder_leaves_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "painterly"
    make(inbox / "_defaults.yaml", "style: watercolor\n")
    make(inbox / "trip" / "_defaults.yaml", "num_layers: 3\n")
    make(inbox / "trip" / "day1" / ".DS_Store")
    make(inbox / "trip" / "day1" / "._beach.jpg")
    prune_batch_folder(inbox / "trip" / "day1", inbox)
    assert not (inbox / "trip").exists()
    assert (inbox / "_defaults.yaml").exists(), "the mode's own defaults stay"


def test_a_batch_with_work_left_stays(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "photo-realistic"
    make(inbox / "trip" / "_defaults.yaml")
    waiting = make(inbox / "trip" / "beach2.jpg")
    syncing = make(inbox / "other" / ".syncthing.cliff.jpg.tmp")
    prune_batch_folder(inbox / "trip", inbox)
    prune_batch_folder(inbox / "other", inbox)
    assert waiting.exists()
    assert syncing.exists()


def test_the_inbox_itself_is_never_removed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "photo-realistic"
    inbox.mkdir(parents=True)
    prune_batch_folder(inbox, inbox)
    assert inbox.is_dir()


def test_a_sidecar_named_like_an_output_keeps_its_bytes(tmp_path: Path) -> None:
    # settings.jpg's sidecar is settings.yaml, the name of the job's effective settings
    photo = make(tmp_path / "inbox" / "settings.jpg", "photo")
    sidecar = make(tmp_path / "inbox" / "settings.yaml", "num_layers: 3\n")
    depth = make(tmp_path / "inbox" / "settings.depth.png", "depth")
    job = tmp_path / "job"
    make(job / "settings.yaml", "effective: settings\n")
    make(job / "settings.depth.png", "depth")  # the job copied its depth map
    clear_inbox_after_success(photo, [sidecar, depth], job)
    assert not sidecar.exists()
    assert not depth.exists()
    assert (job / "settings.yaml").read_text() == "effective: settings\n"
    assert (job / "settings-2.yaml").read_text() == "num_layers: 3\n"
    assert not (job / "settings.depth-2.png").exists()


def test_a_sidecar_named_error_yaml_does_not_overwrite_the_report(tmp_path: Path) -> None:
    photo = make(tmp_path / "inbox" / "error.jpg", "photo")
    sidecar = make(tmp_path / "inbox" / "error.yaml", "num_layers: 3\n")
    report = ErrorReport(job_id="j1", reason="It broke.", hint="Try again.", stage="decode")
    folder = move_to_failed(tmp_path / "failed", photo, [sidecar], report)
    assert yaml.safe_load((folder / "error.yaml").read_text())["reason"] == "It broke."
    assert (folder / "error-2.yaml").read_text() == "num_layers: 3\n"
    assert (folder / "error.jpg").read_text() == "photo"
