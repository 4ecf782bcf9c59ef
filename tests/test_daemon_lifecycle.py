"""What is left of a dropped batch folder after its jobs end."""

from __future__ import annotations

from pathlib import Path

from daemon.lifecycle import prune_batch_folder


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
