"""Drills against the real daemon: every photo ends exactly once, the inbox ends empty."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from daemon_harness import DaemonEnv, depth_path, make_photo, wait_for
from PIL import Image

from daemon.ledger import JobStatus

pytestmark = pytest.mark.e2e


def assert_exactly_once(env: DaemonEnv, completed: list[str], failed: tuple[str, ...] = ()) -> None:
    """Each name has one job of the expected status and one folder; nothing is left over."""
    jobs = env.jobs()
    by_name = Counter(job.input_filename for job in jobs)
    assert sorted(by_name) == sorted([*completed, *failed]), by_name
    assert all(count == 1 for count in by_name.values()), by_name
    statuses = {job.input_filename: job.status for job in jobs}
    assert all(statuses[name] is JobStatus.COMPLETED for name in completed), statuses
    assert all(statuses[name] is JobStatus.FAILED for name in failed), statuses
    folders = env.job_folders()
    assert len(folders) == len(completed)
    for job in jobs:
        if job.status is JobStatus.COMPLETED:
            manifest = json.loads((Path(job.output_dir or "") / "manifest.json").read_text())
            assert manifest["job_id"] == job.id
    assert env.inbox_files() == []
    assert env.temp_leftovers() == []


def drop(env: DaemonEnv, name: str, *, seed: int, size: tuple[int, int] = (320, 240)) -> Path:
    """Write the photo beside the inbox, then move it in (as a finished copy would land)."""
    staged = make_photo(env.root / "staging" / name, seed=seed, size=size)
    shutil.move(depth_path(staged), env.inbox / depth_path(staged).name)
    shutil.move(staged, env.inbox / name)
    return env.inbox / name


@pytest.mark.slow
def test_fifty_photos_dropped_at_once(daemon_env: DaemonEnv) -> None:
    names = [f"photo{i:02d}.jpg" for i in range(50)]
    staging = daemon_env.root / "staging"
    for seed, name in enumerate(names):
        make_photo(staging / name, seed=seed)
    daemon_env.start()
    for path in sorted(staging.iterdir()):
        os.rename(path, daemon_env.inbox / path.name)
    wait_for(lambda: daemon_env.all_done(50), timeout=150, what="50 jobs to finish")
    assert_exactly_once(daemon_env, names)
    assert daemon_env.healthy()


def test_slow_copy_becomes_one_job_after_it_ends(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["watch"] = {"settle_seconds": 0.5, "rescan_seconds": 2.0}
    daemon_env.start()
    width, height = 3200, 3200  # ~30 MB as an uncompressed PNG
    rng = np.random.default_rng(7)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    source = daemon_env.root / "big.png"
    Image.fromarray(pixels).save(source, compress_level=0)
    Image.fromarray(np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (64, 1))).save(
        daemon_env.inbox / "big.depth.png"
    )
    data = source.read_bytes()
    assert len(data) > 29_000_000
    target = daemon_env.inbox / "big.png"
    started = time.monotonic()
    with target.open("wb") as stream:
        for offset in range(0, len(data), 1_500_000):
            stream.write(data[offset : offset + 1_500_000])
            stream.flush()
            time.sleep(0.15)
    copy_ended = time.monotonic()
    assert copy_ended - started > 2.0  # far longer than the settle window
    wait_for(lambda: daemon_env.all_done(1), timeout=90, what="the big photo")
    jobs = daemon_env.jobs()
    assert len(jobs) == 1
    assert jobs[0].status is JobStatus.COMPLETED, jobs[0].error_message
    assert jobs[0].input_sha256 is not None
    assert daemon_env.inbox_files() == []


@pytest.mark.slow
def test_a_copy_pausing_past_the_default_settle_window_becomes_one_job(
    daemon_env: DaemonEnv,
) -> None:
    daemon_env.settings["watch"] = {"rescan_seconds": 2.0}  # watch.settle_seconds: default 2 s
    daemon_env.start()
    staged = make_photo(daemon_env.root / "staging" / "stall.jpg", seed=13, size=(1024, 768))
    shutil.move(depth_path(staged), daemon_env.inbox / "stall.depth.png")
    data = staged.read_bytes()
    chunk = len(data) // 4 + 1
    with (daemon_env.inbox / "stall.jpg").open("wb") as stream:
        for offset in range(0, len(data), chunk):
            if offset:
                time.sleep(3.5)  # a Wi-Fi share or phone sync between two chunks
            stream.write(data[offset : offset + chunk])
            stream.flush()
            assert daemon_env.jobs() == [] or offset + chunk >= len(data)
    wait_for(lambda: daemon_env.all_done(1), timeout=60, what="the stalled copy")
    assert_exactly_once(daemon_env, ["stall.jpg"])
    job = daemon_env.jobs()[0]
    assert (Path(job.output_dir or "") / "source.jpg").read_bytes() == data


@pytest.mark.slow
def test_delete_sends_the_originals_of_a_failed_and_a_completed_job_to_the_trash(
    daemon_env: DaemonEnv,
) -> None:
    daemon_env.start()
    broken = b"\xff\xd8\xff\xe0 not really a jpeg" * 50
    (daemon_env.inbox / "broken.jpg").write_bytes(broken)
    good = drop(daemon_env, "good.jpg", seed=17)
    wait_for(lambda: daemon_env.all_done(2), timeout=60, what="two jobs")
    jobs = {job.input_filename: job for job in daemon_env.jobs()}
    photo = (Path(jobs["good.jpg"].output_dir or "") / "source.jpg").read_bytes()
    env = daemon_env.private_home()
    for name, job in jobs.items():
        result = daemon_env.strata("delete", job.id, env=env)
        assert result.returncode == 0, result.stderr
        assert f"{name} moved to the system trash ({daemon_env.trash})" in result.stdout
    assert (daemon_env.trash / "broken.jpg").read_bytes() == broken
    assert (daemon_env.trash / "good.jpg").read_bytes() == photo
    assert (daemon_env.trash / "good.depth.png").is_file()
    assert daemon_env.jobs() == []
    assert daemon_env.job_folders() == []
    assert not (daemon_env.outbox / "failed" / "broken").exists()
    assert not good.exists()


def test_temp_name_renamed_becomes_one_job_named_after_the_final_name(
    daemon_env: DaemonEnv,
) -> None:
    daemon_env.start()
    staged = make_photo(daemon_env.root / "staging" / "x.jpg", seed=3)
    shutil.move(depth_path(staged), daemon_env.inbox / "x.depth.png")
    partial = daemon_env.inbox / "x.jpg.part"
    shutil.copy(staged, partial)
    time.sleep(1.0)  # a .part file is never taken, however long it sits
    assert daemon_env.jobs() == []
    os.rename(partial, daemon_env.inbox / "x.jpg")
    wait_for(lambda: daemon_env.all_done(1), timeout=30, what="x.jpg")
    assert_exactly_once(daemon_env, ["x.jpg"])
    assert daemon_env.job_folders()[0].name == "x"


def test_junk_files_are_never_jobs(daemon_env: DaemonEnv) -> None:
    daemon_env.start()
    junk = {
        ".DS_Store": b"\0" * 10,
        "._x.jpg": b"\0" * 10,
        "Thumbs.db": b"x",
        "notes.txt": b"hello",
        "beach.yaml": b"num_layers: 3\n",
    }
    for name, content in junk.items():
        (daemon_env.inbox / name).write_bytes(content)
    drop(daemon_env, "real.jpg", seed=11)
    wait_for(lambda: daemon_env.all_done(1), timeout=30, what="real.jpg")
    time.sleep(2.5)  # a rescan passes over the junk too
    jobs = daemon_env.jobs()
    assert [job.input_filename for job in jobs] == ["real.jpg"]
    assert sorted(p.name for p in daemon_env.inbox_files()) == sorted(junk)


def test_broken_image_and_bad_sidecar_fail_without_stopping_the_next(
    daemon_env: DaemonEnv,
) -> None:
    daemon_env.start()
    (daemon_env.inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 50)
    staged = make_photo(daemon_env.root / "staging" / "bad.jpg", seed=5)
    (daemon_env.inbox / "bad.yaml").write_text("num_layers: 9\n")
    shutil.move(depth_path(staged), daemon_env.inbox / "bad.depth.png")
    shutil.move(staged, daemon_env.inbox / "bad.jpg")
    drop(daemon_env, "good.jpg", seed=6)
    wait_for(lambda: daemon_env.all_done(3), timeout=40, what="three jobs")
    assert_exactly_once(daemon_env, ["good.jpg"], failed=("broken.jpg", "bad.jpg"))
    failed = daemon_env.outbox / "failed"
    assert sorted(p.name for p in (failed / "bad").iterdir()) == [
        "bad.depth.png",
        "bad.jpg",
        "bad.yaml",
        "error.yaml",
    ]
    error = (failed / "bad" / "error.yaml").read_text()
    assert "num_layers" in error
    for key in ("job_id:", "reason:", "hint:", "stage:", "at:"):
        assert key in error
    assert (failed / "broken" / "broken.jpg").is_file()
    assert daemon_env.healthy()


def test_duplicate_reuses_the_earlier_result(daemon_env: DaemonEnv) -> None:
    daemon_env.start()
    drop(daemon_env, "one.jpg", seed=21)
    wait_for(lambda: daemon_env.all_done(1), timeout=30, what="one.jpg")
    drop(daemon_env, "two.jpg", seed=21)  # same bytes, same depth map, same settings
    wait_for(lambda: daemon_env.all_done(2), timeout=30, what="two.jpg")
    assert_exactly_once(daemon_env, ["one.jpg", "two.jpg"])
    jobs = {job.input_filename: job for job in daemon_env.jobs()}
    manifest = json.loads(
        (daemon_env.outbox / "photo-realistic" / "two" / "manifest.json").read_text()
    )
    assert manifest["duplicate_of"] == jobs["one.jpg"].id
    assert jobs["two.jpg"].duplicate_of == jobs["one.jpg"].id


@pytest.mark.slow
def test_kill_9_mid_job_then_restart_completes_exactly_once(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["defaults"] = {"max_side": 2048}
    daemon_env.start()
    drop(daemon_env, "long.jpg", seed=31, size=(2048, 1536))
    wait_for(
        lambda: any(j.status is JobStatus.PROCESSING for j in daemon_env.jobs()),
        timeout=30,
        what="the job to start",
    )
    time.sleep(0.8)
    daemon_env.kill9()
    assert daemon_env.jobs()[0].status is JobStatus.PROCESSING
    time.sleep(1.0)  # the orphaned pipeline process notices and exits
    daemon_env.start()
    wait_for(lambda: daemon_env.all_done(1), timeout=60, what="the job to complete")
    assert_exactly_once(daemon_env, ["long.jpg"])
    assert daemon_env.jobs()[0].attempts == 1  # an interruption is not a failed attempt


def test_files_dropped_while_stopped_are_processed_at_start(daemon_env: DaemonEnv) -> None:
    for seed, name in enumerate(["a.jpg", "b.jpg", "c.jpg"]):
        make_photo(daemon_env.inbox / name, seed=40 + seed)
    daemon_env.start()
    wait_for(lambda: daemon_env.all_done(3), timeout=40, what="three jobs")
    assert_exactly_once(daemon_env, ["a.jpg", "b.jpg", "c.jpg"])


def test_sigterm_lets_the_running_job_finish(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["defaults"] = {"max_side": 2048}
    daemon_env.start()
    drop(daemon_env, "term.jpg", seed=51, size=(2048, 1536))
    wait_for(
        lambda: any(j.status is JobStatus.PROCESSING for j in daemon_env.jobs()),
        timeout=30,
        what="the job to start",
    )
    assert daemon_env.stop(signal.SIGTERM) == 0
    assert_exactly_once(daemon_env, ["term.jpg"])


@pytest.mark.slow
def test_sigterm_past_the_grace_interrupts_and_the_next_start_reruns(
    daemon_env: DaemonEnv,
) -> None:
    daemon_env.settings["queue"] = {"shutdown_grace_seconds": 0.2, "job_timeout_seconds": 60.0}
    daemon_env.settings["defaults"] = {"max_side": 2048}
    daemon_env.start()
    drop(daemon_env, "grace.jpg", seed=61, size=(2048, 1536))
    wait_for(
        lambda: any(j.status is JobStatus.PROCESSING for j in daemon_env.jobs()),
        timeout=30,
        what="the job to start",
    )
    assert daemon_env.stop(signal.SIGTERM) == 0
    job = daemon_env.jobs()[0]
    assert job.status is JobStatus.PENDING
    assert (daemon_env.inbox / "grace.jpg").is_file()
    assert daemon_env.temp_leftovers() == []
    daemon_env.start()
    wait_for(lambda: daemon_env.all_done(1), timeout=60, what="the rerun")
    assert_exactly_once(daemon_env, ["grace.jpg"])


def test_refuses_to_start_with_outbox_inside_an_inbox(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["outbox"] = "inbox/painterly/out"
    daemon_env.start(wait=False)
    assert daemon_env.process is not None
    code = daemon_env.process.wait(30)
    assert code != 0
    assert "inside the inbox" in daemon_env.log_text()


@pytest.mark.slow
def test_cancel_stops_a_running_job_and_the_next_one_runs(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["defaults"] = {"max_side": 4096}
    daemon_env.start()
    drop(daemon_env, "long.jpg", seed=71, size=(4000, 3000))
    wait_for(
        lambda: any(j.status is JobStatus.PROCESSING for j in daemon_env.jobs()),
        timeout=30,
        what="the job to start",
    )
    job = daemon_env.jobs()[0]
    assert daemon_env.strata("cancel", job.id).returncode == 0
    wait_for(
        lambda: daemon_env.jobs()[0].status is JobStatus.CANCELLED,
        timeout=30,
        what="the job to be cancelled",
    )
    assert (daemon_env.outbox / "failed" / "long" / "long.jpg").is_file()
    assert daemon_env.job_folders() == []
    drop(daemon_env, "after.jpg", seed=72)
    wait_for(lambda: daemon_env.all_done(2), timeout=60, what="the next job")
    statuses = {j.input_filename: j.status for j in daemon_env.jobs()}
    assert statuses == {"long.jpg": JobStatus.CANCELLED, "after.jpg": JobStatus.COMPLETED}
    assert daemon_env.inbox_files() == []
    assert daemon_env.healthy()


@pytest.mark.slow
def test_polling_mode_picks_up_a_dropped_folder_as_a_batch(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["watch"] = {**daemon_env.settings.get("watch", {}), "polling": True}
    daemon_env.start()
    batch = daemon_env.root / "staging-batch" / "trip"
    for index in range(3):
        make_photo(batch / f"day{index}.jpg", seed=80 + index)
    (batch / "_defaults.yaml").write_text("num_layers: 3\n")
    shutil.move(batch, daemon_env.inbox / "trip")
    wait_for(lambda: daemon_env.all_done(3), timeout=60, what="the batch")
    jobs = daemon_env.jobs()
    assert sorted(j.input_filename for j in jobs) == ["day0.jpg", "day1.jpg", "day2.jpg"]
    assert all(j.status is JobStatus.COMPLETED and j.num_layers == 3 for j in jobs)
    assert sorted(p.name for p in (daemon_env.outbox / "photo-realistic" / "trip").iterdir()) == [
        "day0",
        "day1",
        "day2",
    ]
    wait_for(
        lambda: not (daemon_env.inbox / "trip").exists(), timeout=10, what="the batch to leave"
    )


@pytest.mark.slow
def test_a_job_past_its_timeout_fails_and_the_worker_comes_back(daemon_env: DaemonEnv) -> None:
    daemon_env.settings["defaults"] = {"max_side": 4096}
    daemon_env.settings["queue"] = {"job_timeout_seconds": 2.0, "retries": 0}
    daemon_env.start()
    drop(daemon_env, "slow.jpg", seed=91, size=(4000, 3000))
    wait_for(lambda: daemon_env.all_done(1), timeout=60, what="the timeout")
    job = daemon_env.jobs()[0]
    assert job.status is JobStatus.FAILED
    assert "job_timeout_seconds" in (job.error_message or "")
    error = (daemon_env.outbox / "failed" / "slow" / "error.yaml").read_text()
    assert "stage: timeout" in error
    # A fresh pipeline process replaces the killed one; its start-up is not the job's time.
    drop(daemon_env, "quick.jpg", seed=92)
    wait_for(lambda: daemon_env.all_done(2), timeout=60, what="the next job")
    quick = next(j for j in daemon_env.jobs() if j.input_filename == "quick.jpg")
    assert quick.status is JobStatus.COMPLETED, quick.error_message
    assert {j.input_filename: j.status for j in daemon_env.jobs()}[
        "quick.jpg"
    ] is JobStatus.COMPLETED
    assert daemon_env.inbox_files() == []
    assert daemon_env.healthy()
