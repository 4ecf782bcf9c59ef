"""Which names are jobs, when a file has settled, and how settled photos become jobs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from huey import MemoryHuey
from PIL import Image

from config import Mode
from config.loader import load_settings
from daemon.intake import Intake, stays_inside
from daemon.ledger import JobStatus, Ledger
from daemon.names import Kind, classify, classify_path, input_key, owner_stem
from daemon.queue import JobQueue
from daemon.settle import SettleTracker


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("beach.jpg", Kind.IMAGE),
        ("BEACH.JPEG", Kind.IMAGE),
        ("x.heic", Kind.IMAGE),
        ("beach.yaml", Kind.SIDECAR),
        ("beach.yml", Kind.SIDECAR),
        ("_defaults.yaml", Kind.FOLDER_DEFAULTS),
        ("beach.depth.png", Kind.DEPTH_MAP),
        ("beach.depth.npy", Kind.DEPTH_MAP),
        (".DS_Store", Kind.IGNORED),
        ("._beach.jpg", Kind.IGNORED),
        ("Thumbs.db", Kind.IGNORED),
        ("desktop.ini", Kind.IGNORED),
        ("Icon\r", Kind.IGNORED),
        ("x.jpg.part", Kind.IGNORED),
        ("x.crdownload", Kind.IGNORED),
        ("x.tmp", Kind.IGNORED),
        (".syncthing.x.jpg", Kind.IGNORED),
        ("~$x.jpg", Kind.IGNORED),
        (".hidden.jpg", Kind.IGNORED),
        ("notes.txt", Kind.IGNORED),
        ("README.md", Kind.IGNORED),
    ],
)
def test_classify(name: str, kind: Kind) -> None:
    assert classify(name) is kind


def test_files_in_ignored_folders_are_ignored(tmp_path: Path) -> None:
    for folder in ("__MACOSX", ".stversions", "@eaDir", ".Trashes", ".hidden"):
        assert classify_path(tmp_path / folder / "a.jpg", tmp_path) is Kind.IGNORED
    assert classify_path(tmp_path / "trip" / "a.jpg", tmp_path) is Kind.IMAGE


def test_owner_stem_and_nfc_keys(tmp_path: Path) -> None:
    assert owner_stem("beach.depth.png") == "beach"
    assert owner_stem("beach.yaml") == "beach"
    decomposed = "cafe\u0301.jpg"
    assert (
        input_key(tmp_path / "photo-realistic" / decomposed, tmp_path)
        == "photo-realistic/caf\u00e9.jpg"
    )


def test_settle_waits_for_size_and_mtime_to_be_still(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"1")
    tracker = SettleTracker(1.0)
    tracker.touch(path, now=0.0)
    assert tracker.settled(0.5) == []
    with path.open("ab") as stream:
        stream.write(b"more")  # a copy still writing
    assert tracker.settled(0.9) == []  # the change restarts the clock at 0.9
    assert tracker.settled(1.8) == []
    assert [s.path for s in tracker.settled(1.95)] == [path]


def test_settle_drops_vanished_files_and_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "real.jpg"
    target.write_bytes(b"x")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    tracker = SettleTracker(0.0)
    tracker.touch(link, now=0.0)
    assert link not in tracker
    tracker.touch(target, now=0.0)
    target.unlink()
    assert tracker.settled(5.0) == []
    assert len(tracker) == 0


def test_stays_inside_refuses_a_symlinked_folder_leading_out(tmp_path: Path) -> None:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (inbox / "escape").symlink_to(outside, target_is_directory=True)
    (inbox / "trip").mkdir()
    assert stays_inside(inbox / "trip" / "a.jpg", inbox)
    assert not stays_inside(inbox / "escape" / "a.jpg", inbox)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


Parts = tuple[Intake, Ledger, JobQueue, Clock, Path]


@pytest.fixture
def intake_parts(tmp_path: Path) -> Parts:
    config = tmp_path / "config.yaml"
    config.write_text(
        "inbox: inbox\noutbox: outbox\nstate_dir: state\nwatch:\n  settle_seconds: 1.0\n"
    )
    settings = load_settings(config, environ={})
    inbox = settings.value.inbox_for(Mode.PHOTO_REALISTIC)
    inbox.mkdir(parents=True)
    ledger = Ledger.in_state_dir(settings.value.state_dir)
    queue = JobQueue(MemoryHuey(immediate=False))
    clock = Clock()
    return Intake(settings, ledger, queue, clock=clock), ledger, queue, clock, inbox


def photo(path: Path) -> Path:
    Image.new("RGB", (8, 6), "red").save(path)
    return path


def test_a_settled_photo_becomes_exactly_one_job(intake_parts: Parts) -> None:
    intake, ledger, queue, clock, inbox = intake_parts
    path = photo(inbox / "a.jpg")
    intake.on_file(path)
    assert intake.tick() == 0  # not settled yet
    clock.now += 1.1
    assert intake.tick() == 1
    intake.on_file(path)  # more events for the same file
    intake.rescan()
    clock.now += 5
    assert intake.tick() == 0  # already queued
    jobs = ledger.recent()
    assert [j.input_filename for j in jobs] == ["a.jpg"]
    assert queue.queued_job_ids() == [jobs[0].id]


def test_sidecar_arrival_restarts_the_photo_clock_and_sets_priority(intake_parts: Parts) -> None:
    intake, ledger, _queue, clock, inbox = intake_parts
    path = photo(inbox / "b.jpg")
    intake.on_file(path)
    clock.now += 0.8
    (inbox / "b.yaml").write_text("priority: 7\n")
    intake.on_file(inbox / "b.yaml")
    clock.now += 0.5
    assert intake.tick() == 0  # the sidecar restarted the clock
    clock.now += 0.6
    assert intake.tick() == 1
    assert ledger.recent()[0].priority == 7


def test_a_file_that_never_opens_is_taken_late_to_fail_clearly(intake_parts: Parts) -> None:
    intake, ledger, _queue, clock, inbox = intake_parts
    broken = inbox / "broken.jpg"
    broken.write_bytes(b"not an image")
    intake.on_file(broken)
    clock.now += 1.5
    assert intake.tick() == 0
    clock.now += intake.unreadable_grace
    assert intake.tick() == 1
    assert ledger.recent()[0].status is JobStatus.PENDING


def test_ignored_and_temp_names_never_tracked(intake_parts: Parts) -> None:
    intake, _ledger, _queue, clock, inbox = intake_parts
    for name in (".DS_Store", "x.jpg.part", "notes.txt", "._x.jpg"):
        (inbox / name).write_bytes(b"x")
        intake.on_file(inbox / name)
    os.mkdir(inbox / "__MACOSX")
    photo(inbox / "__MACOSX" / "y.jpg")
    intake.rescan()
    clock.now += 30
    assert intake.tick() == 0
    assert len(intake.tracker) == 0
