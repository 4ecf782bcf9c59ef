"""The supervised pipeline process and the executor, with fake runners passed in."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from PIL import Image

from config.loader import load_settings
from config.model import Mode
from daemon.executor import JobExecutor
from daemon.ledger import JobStatus, Ledger
from daemon.protocol import Failed, Succeeded
from daemon.worker import Outcome, PipelineWorker, ProgressSink, StopCheck, Stopped
from pipeline.job import Job, JobResult


def warm_runner(job: Job, *, cache: Any, progress: Any) -> JobResult:
    """Counts builds in the worker's cache: 1 means the model stayed warm."""
    cache.get("model", os.getpid)
    builds = cache.get("builds", lambda: [0])
    builds[0] += 1
    return JobResult(job.output_root, {"pid": os.getpid(), "calls": builds[0]})


def slow_runner(job: Job, *, cache: Any, progress: Any) -> JobResult:
    time.sleep(60)
    raise AssertionError("unreachable")


def crash_runner(job: Job, *, cache: Any, progress: Any) -> JobResult:
    os._exit(3)


def job_for(tmp_path: Path) -> Job:
    return Job(
        job_id="j", mode=Mode.PHOTO_REALISTIC, input_path=tmp_path / "a.jpg", output_root=tmp_path
    )


def no_stop() -> str | None:
    return None


@pytest.mark.slow
def test_the_worker_stays_warm_across_jobs_and_recovers_from_timeout_and_crash(
    tmp_path: Path,
) -> None:
    worker = PipelineWorker("test_daemon_worker:warm_runner")
    try:
        first = worker.run(job_for(tmp_path), timeout=60, should_stop=no_stop)
        second = worker.run(job_for(tmp_path), timeout=60, should_stop=no_stop)
        assert isinstance(first, Succeeded)
        assert isinstance(second, Succeeded)
        assert first.manifest["pid"] == second.manifest["pid"]
        assert second.manifest["calls"] == 2
    finally:
        worker.close()
    slow = PipelineWorker("test_daemon_worker:slow_runner")
    started = time.monotonic()
    outcome = slow.run(job_for(tmp_path), timeout=2.0, should_stop=no_stop)
    assert isinstance(outcome, Failed)
    assert outcome.stage == "timeout"
    assert outcome.transient
    assert time.monotonic() - started < 20
    assert not slow.alive
    crash = PipelineWorker("test_daemon_worker:crash_runner")
    outcome = crash.run(job_for(tmp_path), timeout=30, should_stop=no_stop)
    assert isinstance(outcome, Failed)
    assert outcome.stage == "worker"
    crash.close()


class FakeWorker:
    """Stands in for the pipeline process: returns queued outcomes, writes a job folder."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.jobs: list[Job] = []

    @property
    def alive(self) -> bool:
        return True

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def run(
        self,
        job: Job,
        *,
        timeout: float,
        should_stop: StopCheck,
        progress: ProgressSink | None = None,
    ) -> Outcome:
        self.jobs.append(job)
        kind = self.outcomes.pop(0)
        if kind == "ok":
            folder = job.output_root / job.stem
            folder.mkdir(parents=True)
            manifest = {"job_id": job.job_id}
            (folder / "manifest.json").write_text(json.dumps(manifest))
            return Succeeded(folder, manifest)
        if kind == "crash":
            return Failed("crashed", "hint", "worker", transient=True)
        if kind == "shutdown":
            return Stopped("shutdown")
        return Failed("bad input", "hint", "decode")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Any, Ledger, Path]:
    config = tmp_path / "config.yaml"
    config.write_text("inbox: inbox\noutbox: outbox\nstate_dir: state\nqueue:\n  retries: 1\n")
    settings = load_settings(config, environ={})
    inbox = settings.value.inbox_for(Mode.PHOTO_REALISTIC)
    inbox.mkdir(parents=True)
    return settings, Ledger.in_state_dir(settings.value.state_dir), inbox


def queued_job(ledger: Ledger, inbox: Path, name: str) -> str:
    path = inbox / name
    Image.new("RGB", (8, 6), "blue").save(path)
    (inbox / f"{path.stem}.yaml").write_text("num_layers: 3\n")
    job = ledger.create_job(
        mode="photo-realistic", input_path=path, input_key=f"photo-realistic/{name}"
    )
    assert job is not None
    return job.id


def executor(
    parts: tuple[Any, Ledger, Path], worker: FakeWorker, requeued: list[str]
) -> JobExecutor:
    settings, ledger, _inbox = parts
    return JobExecutor(
        settings,
        ledger,
        worker,
        requeue=lambda job_id, priority, delay: requeued.append(job_id),
        notify=lambda title, message: None,
    )


def test_success_moves_the_photo_and_sidecar_out_of_the_inbox(parts: Any) -> None:
    _settings, ledger, inbox = parts
    job_id = queued_job(ledger, inbox, "a.jpg")
    executor(parts, FakeWorker(["ok"]), [])(job_id)
    record = ledger.get(job_id)
    assert record.status is JobStatus.COMPLETED
    assert list(inbox.iterdir()) == []
    assert (Path(record.output_dir) / "a.yaml").is_file()
    assert record.num_layers == 3


def test_a_crash_is_retried_then_failed_into_the_failed_folder(parts: Any) -> None:
    settings, ledger, inbox = parts
    job_id = queued_job(ledger, inbox, "b.jpg")
    requeued: list[str] = []
    run = executor(parts, FakeWorker(["crash", "crash"]), requeued)
    run(job_id)
    assert requeued == [job_id]
    assert ledger.get(job_id).status is JobStatus.PENDING
    run(job_id)
    record = ledger.get(job_id)
    assert record.status is JobStatus.FAILED
    failed = settings.value.failed_dir / "b"
    assert sorted(p.name for p in failed.iterdir()) == ["b.jpg", "b.yaml", "error.yaml"]
    assert list(inbox.iterdir()) == []


def test_a_job_claimed_once_runs_once(parts: Any) -> None:
    _settings, ledger, inbox = parts
    job_id = queued_job(ledger, inbox, "c.jpg")
    worker = FakeWorker(["ok"])
    run = executor(parts, worker, [])
    run(job_id)
    run(job_id)  # the same id delivered twice by the queue
    assert len(worker.jobs) == 1


def test_the_same_bytes_and_settings_reuse_the_earlier_result(parts: Any) -> None:
    _settings, ledger, inbox = parts
    first = queued_job(ledger, inbox, "d.jpg")
    worker = FakeWorker(["ok"])
    run = executor(parts, worker, [])
    run(first)
    second = queued_job(ledger, inbox, "e.jpg")  # identical pixels and sidecar
    run(second)
    assert len(worker.jobs) == 1
    record = ledger.get(second)
    assert record.status is JobStatus.COMPLETED
    assert record.duplicate_of == first
    assert record.result_manifest["duplicate_of"] == first


@pytest.fixture
def log_lines() -> Any:
    """The messages loguru writes while the test runs."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    yield lines
    logger.remove(sink)


def test_a_failed_jobs_log_line_carries_its_reason(parts: Any, log_lines: list[str]) -> None:
    _settings, ledger, inbox = parts
    job_id = queued_job(ledger, inbox, "f.jpg")
    executor(parts, FakeWorker(["bad"]), [])(job_id)
    assert ledger.get(job_id).status is JobStatus.FAILED
    (line,) = [line for line in log_lines if line.startswith("f.jpg ")]
    assert line.startswith("f.jpg failed after ")
    assert line.endswith(": bad input")


def test_a_job_cut_short_by_shutdown_is_logged_as_running_again(
    parts: Any, log_lines: list[str]
) -> None:
    _settings, ledger, inbox = parts
    job_id = queued_job(ledger, inbox, "g.jpg")
    run = executor(parts, FakeWorker(["shutdown"]), [])
    run.abort.set()  # the daemon is stopping while the job runs
    run(job_id)
    assert ledger.get(job_id).status is JobStatus.PENDING
    (line,) = [line for line in log_lines if line.startswith("g.jpg ")]
    assert "cut short by the shutdown" in line
    assert line.endswith("it runs again at the next start")
    assert "pending" not in line
