"""The install contract: bounded ranges in pyproject.toml, a lock that pins them, and the
README's two set-up commands and CI installing from that lock."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    """Every dependency pyproject.toml declares, the dev extras included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    names = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(name) for name in names]


def _lock() -> dict[str, str]:
    """constraints.txt as {canonical name: exact version}."""
    pins: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


@pytest.mark.parametrize("req", _requirements(), ids=str)
def test_every_versioned_dependency_has_an_upper_bound(req: Requirement) -> None:
    """A dependency with a lower bound also stops before its next major version."""
    operators = {spec.operator for spec in req.specifier}
    if not operators:  # the type stubs: any version describes the pinned library
        assert req.name.startswith("types-")
        return
    assert operators & {"<", "=="}, f"{req} has no upper bound"


def test_torch_is_pinned_exactly_in_both() -> None:
    """torch is exactly 2.13.0: another spec pulls a multi-GB CUDA build on Linux."""
    (torch,) = [req for req in _requirements() if req.name == "torch"]
    assert str(torch.specifier) == "==2.13.0"
    assert _lock()["torch"] == "2.13.0"


def test_the_lock_pins_every_dependency_inside_its_range() -> None:
    """Each declared dependency has an exact version in the lock that its range allows."""
    pins = _lock()
    for req in _requirements():
        version = pins.get(canonicalize_name(req.name))
        assert version is not None, f"constraints.txt lacks {req.name}"
        assert req.specifier.contains(version, prereleases=True), f"{req.name}=={version}"


def test_readme_setup_and_ci_install_from_the_lock() -> None:
    """The README's two set-up commands and .ci/run install with -c constraints.txt."""
    readme = (REPO / "README.md").read_text("utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, flags=re.S)
    assert len(commands) == 2
    assert all("pip install -c constraints.txt -e " in command for command in commands)
    assert "strata run" in commands[0]
    assert "pytest" in commands[1]
    assert "pip install -q -c constraints.txt -e '.[dev]'" in (REPO / ".ci/run").read_text()
