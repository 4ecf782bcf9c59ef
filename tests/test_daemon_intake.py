"""Which names are jobs, when a file has settled, and how settled photos become jobs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from huey import MemoryHuey
from PIL import Image

from config import Mode
from config.loader import load_settings
from daemon.completeness import is_complete_image
from daemon.intake import Intake
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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


Parts = tuple[Intake, Ledger, JobQueue, Clock, Path]


def write_config(tmp_path: Path, *, settle: float) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"inbox: inbox\noutbox: outbox\nstate_dir: state\nwatch:\n  settle_seconds: {settle}\n"
    )
    return config


@pytest.fixture
def intake_parts(tmp_path: Path) -> Parts:
    settings = load_settings(write_config(tmp_path, settle=1.0), environ={})
    inbox = settings.value.inbox_for(Mode.PHOTO_REALISTIC)
    inbox.mkdir(parents=True)
    ledger = Ledger.in_state_dir(settings.value.state_dir)
    queue = JobQueue(MemoryHuey(immediate=False))
    clock = Clock()
    return Intake(settings, ledger, queue, clock=clock), ledger, queue, clock, inbox


def photo(path: Path) -> Path:
    Image.new("RGB", (8, 6), "red").save(path)
    return path


def test_a_photo_behind_a_symlinked_folder_leading_out_is_never_a_job(
    intake_parts: Parts, tmp_path: Path
) -> None:
    intake, ledger, _queue, clock, inbox = intake_parts
    outside = tmp_path / "outside"
    outside.mkdir()
    (inbox / "escape").symlink_to(outside, target_is_directory=True)
    (inbox / "trip").mkdir()
    intake.on_file(photo(inbox / "escape" / "a.jpg"))
    intake.on_file(photo(inbox / "trip" / "b.jpg"))
    clock.now += 1.1
    assert intake.tick() == 1
    assert [job.input_filename for job in ledger.recent()] == ["b.jpg"]


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
    clock.now += intake.stall_window
    assert intake.tick() == 1
    assert ledger.recent()[0].status is JobStatus.PENDING


@pytest.mark.parametrize(("settle", "window"), [(2.0, 10.0), (0.3, 10.0), (4.0, 20.0)])
def test_the_stall_window_is_ten_seconds_or_five_settle_windows(
    tmp_path: Path, settle: float, window: float
) -> None:
    """At the default 2 s settle, a copy pausing 5 s is still one job."""
    settings = load_settings(write_config(tmp_path, settle=settle), environ={})
    ledger = Ledger.in_state_dir(settings.value.state_dir)
    intake = Intake(settings, ledger, JobQueue(MemoryHuey(immediate=False)), clock=Clock())
    assert intake.stall_window == window


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class CountingCheck:
    """The real completeness check, counting how often a file is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self, path: Path) -> bool:
        self.reads += 1
        return is_complete_image(path, max_pixels=10**8, max_bytes=10**9)


def test_a_copy_that_stalls_past_the_settle_window_waits_and_becomes_one_job(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_config(tmp_path, settle=2.0), environ={})
    inbox = settings.value.inbox_for(Mode.PHOTO_REALISTIC)
    inbox.mkdir(parents=True)
    ledger = Ledger.in_state_dir(settings.value.state_dir)
    clock, check = Clock(), CountingCheck()
    intake = Intake(
        settings, ledger, JobQueue(MemoryHuey(immediate=False)), clock=clock, check_image=check
    )
    data, path = jpeg_bytes(), inbox / "copy.jpg"
    third = len(data) // 3 + 1
    chunks = [data[start : start + third] for start in range(0, len(data), third)]
    with path.open("wb") as stream:
        for chunk in chunks[:-1]:
            stream.write(chunk)
            stream.flush()
            intake.on_file(path)
            for _ in range(9):  # a 4.5 s pause, ticked every 0.5 s: settled, yet cut short
                clock.now += 0.5
                assert intake.tick() == 0
        stream.write(chunks[-1])
    assert check.reads == 2  # once per stall; the same bytes are never read twice
    assert ledger.recent() == []
    intake.on_file(path)
    clock.now += 2.1
    assert intake.tick() == 1
    assert [j.input_filename for j in ledger.recent()] == ["copy.jpg"]


def test_a_cut_short_file_that_stays_still_is_taken_after_the_stall_window(
    intake_parts: Parts,
) -> None:
    intake, ledger, _queue, clock, inbox = intake_parts
    path = inbox / "cut.jpg"
    path.write_bytes(jpeg_bytes()[:-400])
    intake.on_file(path)
    clock.now += intake.stall_window - 0.1
    assert intake.tick() == 0
    clock.now += 0.2
    assert intake.tick() == 1
    assert ledger.recent()[0].input_filename == "cut.jpg"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_completeness_reads_each_format_to_its_end(tmp_path: Path, fmt: str) -> None:
    noise = np.random.default_rng(2).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, fmt)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.write_bytes(buffer.getvalue())
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    assert is_complete_image(whole, max_pixels=10**6, max_bytes=10**6)
    assert not is_complete_image(cut, max_pixels=10**6, max_bytes=10**6)
    assert is_complete_image(cut, max_pixels=10**6, max_bytes=100)  # too large: the job says


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
