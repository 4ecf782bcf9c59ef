"""`strata delete`: outputs go, the user's originals never vanish without --purge."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from config import Mode
from config.errors import SettingsError
from config.loader import load_settings
from config.model import Settings
from daemon import cmd_manage, manage
from daemon.disposal import Fate, dispose
from daemon.ledger import JobFailure, Ledger

STRATA = Path(sys.executable).with_name("strata")
PHOTO_BYTES = b"the only copy of a photo"
OUTPUTS = (
    "Layer_1_background.png",
    "Layer_2_foreground.png",
    "depth.png",
    "preview.png",
    "parallax.webp",
    "manifest.json",
    "settings.yaml",
)


def settings_of(config: Path) -> Settings:
    return load_settings(config, environ={}).value


def ledger_of(config: Path) -> Ledger:
    return Ledger.in_state_dir(settings_of(config).state_dir)


def claimed_job(config: Path, name: str) -> str:
    settings, ledger = settings_of(config), ledger_of(config)
    job = ledger.create_job(
        mode="photo-realistic",
        input_path=settings.inbox_for(Mode.PHOTO_REALISTIC) / name,
        input_key=f"photo-realistic/{name}",
    )
    assert job is not None
    ledger.claim(job.id)
    return job.id


def write_companions(folder: Path, stem: str) -> None:
    (folder / f"{stem}.yaml").write_text("num_layers: 3\n")
    Image.new("L", (4, 4)).save(folder / f"{stem}.depth.png")


def failed_job(config: Path, name: str = "a.jpg") -> tuple[str, Path]:
    """A failed job whose folder holds the photo, its sidecar, depth map and error.yaml."""
    job_id = claimed_job(config, name)
    folder = settings_of(config).failed_dir / Path(name).stem
    folder.mkdir(parents=True)
    (folder / name).write_bytes(PHOTO_BYTES)
    write_companions(folder, Path(name).stem)
    (folder / "error.yaml").write_text("reason: x\n")
    ledger_of(config).fail(job_id, JobFailure("Broken.", "Fix.", "decode"), output_dir=folder)
    return job_id, folder


def completed_job(config: Path, name: str = "b.jpg") -> tuple[str, Path]:
    """A completed job's folder: outputs, ``source.jpg`` and the moved sidecar/depth map."""
    job_id = claimed_job(config, name)
    folder = settings_of(config).outbox_for(Mode.PHOTO_REALISTIC) / Path(name).stem
    folder.mkdir(parents=True)
    for output in OUTPUTS:
        (folder / output).write_bytes(b"output")
    (folder / "source.jpg").write_bytes(PHOTO_BYTES)
    write_companions(folder, Path(name).stem)
    ledger_of(config).complete(job_id, output_dir=folder, manifest={"job_id": job_id})
    return job_id, folder


class FolderTrash:
    """A trash that moves files into one folder, or refuses like an unwritable trash."""

    def __init__(self, folder: Path, *, refuse: bool = False) -> None:
        self.folder = folder
        self.refuse = refuse
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, path: Path) -> None:
        if self.refuse:
            raise PermissionError(f"no trash folder can be made for {path}")
        shutil.move(str(path), self.folder / path.name)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def delete_args(config: Path, job: str, **flags: bool) -> argparse.Namespace:
    values = {"config": str(config), "job": job, "purge": False, "yes": False}
    return argparse.Namespace(**{**values, **flags})


def test_outputs_are_known_names_and_everything_else_is_an_original(tmp_path: Path) -> None:
    completed, failed = tmp_path / "completed", tmp_path / "failed"
    for folder, files in [
        (completed, (*OUTPUTS, "source.jpg", "b.yaml", "b.depth.png", "notes.txt")),
        (failed, ("error.yaml", "depth.png")),  # a photo named depth.png in failed/
    ]:
        folder.mkdir()
        for name in files:
            (folder / name).write_bytes(PHOTO_BYTES)
    completed_trash, failed_trash = FolderTrash(tmp_path / "t1"), FolderTrash(tmp_path / "t2")
    dispose(completed, photo_name="b.jpg", failed=False, purge=False, trash=completed_trash)
    dispose(failed, photo_name="depth.png", failed=True, purge=False, trash=failed_trash)
    assert names(completed_trash.folder) == ["b.depth.png", "b.jpg", "b.yaml", "notes.txt"]
    assert names(failed_trash.folder) == ["depth.png"]
    assert not completed.exists()
    assert not failed.exists()


def test_failed_job_originals_go_to_the_trash_and_the_rest_is_deleted(
    config: Path, tmp_path: Path
) -> None:
    job_id, folder = failed_job(config)
    trash = FolderTrash(tmp_path / "trash")
    deletion = manage.delete(
        ledger_of(config).find(job_id), settings_of(config), ledger_of(config), trash=trash
    )
    assert names(trash.folder) == ["a.depth.png", "a.jpg", "a.yaml"]
    assert (trash.folder / "a.jpg").read_bytes() == PHOTO_BYTES
    assert {d.name: d.fate for d in deletion.originals} == dict.fromkeys(
        ["a.depth.png", "a.jpg", "a.yaml"], Fate.TRASHED
    )
    assert not folder.exists()
    assert ledger_of(config).get(job_id) is None


def test_completed_job_gives_source_its_own_name_back_before_the_trash(
    config: Path, tmp_path: Path
) -> None:
    job_id, folder = completed_job(config)
    trash = FolderTrash(tmp_path / "trash")
    manage.delete(
        ledger_of(config).find(job_id), settings_of(config), ledger_of(config), trash=trash
    )
    assert names(trash.folder) == ["b.depth.png", "b.jpg", "b.yaml"]
    assert (trash.folder / "b.jpg").read_bytes() == PHOTO_BYTES
    assert not folder.exists()


def test_when_the_trash_refuses_the_originals_stay_and_the_outputs_go(
    config: Path, tmp_path: Path
) -> None:
    job_id, folder = completed_job(config)
    deletion = manage.delete(
        ledger_of(config).find(job_id),
        settings_of(config),
        ledger_of(config),
        trash=FolderTrash(tmp_path / "trash", refuse=True),
    )
    assert names(folder) == ["b.depth.png", "b.jpg", "b.yaml"]
    assert (folder / "b.jpg").read_bytes() == PHOTO_BYTES
    kept = {d.name: d for d in deletion.originals}
    assert kept["b.jpg"].fate is Fate.KEPT
    assert kept["b.jpg"].describe().startswith(f"b.jpg kept at {folder / 'b.jpg'}")
    assert "no trash folder" in kept["b.jpg"].describe()
    assert ledger_of(config).get(job_id) is None


def test_delete_command_prints_where_each_original_went(config: Path, tmp_path: Path) -> None:
    job_id, folder = failed_job(config)
    trash = FolderTrash(tmp_path / "trash")
    out = io.StringIO()
    assert cmd_manage.handle_delete(delete_args(config, job_id), out=out, trash=trash) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"deleted job {job_id}: its record and outputs"
    assert sorted(line.split()[0] for line in lines[1:]) == ["a.depth.png", "a.jpg", "a.yaml"]
    assert all("moved to the system trash" in line for line in lines[1:])
    assert not folder.exists()


def test_purge_off_a_terminal_without_yes_refuses_and_keeps_everything(config: Path) -> None:
    job_id, folder = failed_job(config)
    with pytest.raises(SettingsError) as raised:
        cmd_manage.handle_delete(
            delete_args(config, job_id, purge=True), out=io.StringIO(), stdin=io.StringIO("y\n")
        )
    assert "--yes" in raised.value.hint
    assert (folder / "a.jpg").read_bytes() == PHOTO_BYTES
    assert ledger_of(config).get(job_id) is not None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "purged"), [("y\n", True), ("n\n", False), ("", False)])
def test_purge_on_a_terminal_asks_first(config: Path, answer: str, purged: bool) -> None:
    job_id, folder = failed_job(config)
    out = io.StringIO()
    code = cmd_manage.handle_delete(
        delete_args(config, job_id, purge=True), out=out, stdin=Terminal(answer)
    )
    assert "[y/N]" in out.getvalue()
    assert folder.exists() is not purged
    assert (code == 0) is purged
    assert (ledger_of(config).get(job_id) is None) is purged


def run_strata(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, off a terminal, with a home (and so a trash) inside ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "share")}
    return subprocess.run(
        [str(STRATA), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_cli_delete_sends_originals_to_the_real_trash_and_says_where(
    config: Path, tmp_path: Path
) -> None:
    failed_id, failed_folder = failed_job(config)
    completed_id, completed_folder = completed_job(config)
    trash = tmp_path / "home" / "share" / "Trash" / "files"
    for job_id, photo in ((failed_id, "a.jpg"), (completed_id, "b.jpg")):
        result = run_strata(tmp_path, "delete", job_id, "--config", str(config))
        assert result.returncode == 0, result.stderr
        assert f"{photo} moved to the system trash ({trash})" in result.stdout
        assert (trash / photo).read_bytes() == PHOTO_BYTES
    assert not failed_folder.exists()
    assert not completed_folder.exists()
    assert sorted(p.name for p in trash.iterdir()) == [
        "a.depth.png",
        "a.jpg",
        "a.yaml",
        "b.depth.png",
        "b.jpg",
        "b.yaml",
    ]


@pytest.mark.slow
def test_cli_purge_needs_yes_without_a_terminal(config: Path, tmp_path: Path) -> None:
    job_id, folder = failed_job(config)
    refused = run_strata(tmp_path, "delete", job_id, "--purge", "--config", str(config))
    assert refused.returncode == 2
    assert "add --yes" in refused.stderr.lower()
    assert (folder / "a.jpg").read_bytes() == PHOTO_BYTES
    purged = run_strata(tmp_path, "delete", job_id, "--purge", "--yes", "--config", str(config))
    assert purged.returncode == 0, purged.stderr
    assert "a.jpg destroyed (--purge)" in purged.stdout
    assert not folder.exists()
    assert not (tmp_path / "home" / "share" / "Trash").exists()
