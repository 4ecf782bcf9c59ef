"""The issue's target figures (issue 11, "Figures to reach") on the quality bench's scenes.

One run of ``bench.quality`` (every family and case, exact and model-like depth, Strata
and Strata's layers with Telea as the fill) serves every test here; each test asserts one
figure, per family where the figure is a minimum, so a failure names the family. These
are targets for the pipeline, not regression tests: they fail until it reaches them.

    .venv/bin/python -m pytest tests/test_quality_targets.py     # ~2 min on 2 cores
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import quality
from bench.scenes import FAMILIES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def short_of_target(*families: str, why: str) -> list[Any]:
    """The parameters, with the families not yet at the target marked as strict xfails:
    the gap stays visible in every run, and a family reaching the target fails the run
    until its mark is removed."""
    return [
        pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=why)) if f in families else f
        for f in FAMILIES
    ]


SUBJECTS = {"strata": quality.strata, "strata+telea": quality.strata_telea}


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return quality.run(methods=SUBJECTS)


def line(result: dict[str, Any], *, depth: str, family: str | None = None) -> dict[str, Any]:
    """Strata's summary line for ``depth`` (and ``family``)."""
    lines = result["families"] if family else result["summary"]
    return next(
        s
        for s in lines
        if s["method"] == "strata" and s["depth"] == depth and s.get("family") == family
    )


def failing_runs(result: dict[str, Any], *, depth: str, family: str, floor: float) -> list[Any]:
    return [
        (r["scene"], r["count"], r["ious"])
        for r in result["rows"]
        if r["method"] == "strata"
        and r["depth"] == depth
        and r["family"] == family
        and r["true_count"]
        and r["min_iou"] < floor
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_min_per_layer_iou_at_least_098_with_exact_depth(
    bench: dict[str, Any], family: str
) -> None:
    """Every surface of every true-count scene of the family, exact depth."""
    found = line(bench, depth="exact", family=family)["min_iou"]
    assert found >= 0.98, failing_runs(bench, depth="exact", family=family, floor=0.98)


@pytest.mark.parametrize(
    "family",
    short_of_target(
        "wall",
        "camouflage",
        why="issue 11: wall 0.771 (the wheel: stretches of its rim still go to the wall, "
        "and patches of wall beside it that the blur brought to its depth go to it), "
        "camouflage 0.817 (colour cannot place the bled edge)",
    ),
)
def test_min_per_layer_iou_at_least_090_with_model_like_depth(
    bench: dict[str, Any], family: str
) -> None:
    found = line(bench, depth="model-like", family=family)["min_iou"]
    assert found >= 0.90, failing_runs(bench, depth="model-like", family=family, floor=0.90)


@pytest.mark.parametrize("depth", quality.DEPTHS)
def test_reveal_ghost_halo_error_at_most_08_of_telea(bench: dict[str, Any], depth: str) -> None:
    """Pixel-weighted over every run, on the same uncovered pixels."""
    ours = line(bench, depth=depth)["ghost_error"]
    telea = next(
        s["ghost_error"]
        for s in bench["summary"]
        if s["method"] == "strata+telea" and s["depth"] == depth
    )
    assert ours <= 0.8 * telea, (ours, telea)


@pytest.mark.parametrize("depth", quality.DEPTHS)
def test_reveal_fill_error_at_most_09_of_telea(bench: dict[str, Any], depth: str) -> None:
    ours = line(bench, depth=depth)["fill_error"]
    telea = next(
        s["fill_error"]
        for s in bench["summary"]
        if s["method"] == "strata+telea" and s["depth"] == depth
    )
    assert ours <= 0.9 * telea, (ours, telea)


@pytest.mark.parametrize("depth", quality.DEPTHS)
def test_background_opaque_in_every_run(bench: dict[str, Any], depth: str) -> None:
    assert line(bench, depth=depth)["background_opaque"]


@pytest.mark.parametrize("depth", quality.DEPTHS)
def test_recomposition_at_least_45_db_in_every_run(bench: dict[str, Any], depth: str) -> None:
    assert line(bench, depth=depth)["min_psnr_db"] >= 45.0


@pytest.mark.parametrize(
    "depth",
    [
        "exact",
        pytest.param(
            "model-like",
            marks=pytest.mark.xfail(
                strict=True, reason="issue 11: 12 px at a mislabelled rim (small/1)"
            ),
        ),
    ],
)
def test_no_parallax_holes_in_any_run(bench: dict[str, Any], depth: str) -> None:
    """SPEC: a shift of the preview's amplitude reveals no hole."""
    holes = [
        (r["scene"], r["count"], r["parallax_holes"])
        for r in bench["rows"]
        if r["method"] == "strata" and r["depth"] == depth and r["parallax_holes"]
    ]
    assert not holes


@pytest.mark.parametrize(
    "family",
    [
        pytest.param(
            "floor",
            marks=pytest.mark.xfail(
                strict=True,
                reason="issue 11: floor 0.88 (1 px wire: alpha a little high on textured floor)",
            ),
        ),
        "wall",
    ],
)
def test_thin_parts_keep_the_layer_they_are_attached_to_with_exact_depth(
    bench: dict[str, Any], family: str
) -> None:
    """SPEC: thin parts (a pole, a wire, spokes) stay with their layer. The figure (part
    IoU ≥ 0.9 with exact depth, true count) is this bench's proposal; the issue has none."""
    parts = [
        (r["scene"], name, value)
        for r in bench["rows"]
        if r["method"] == "strata"
        and r["depth"] == "exact"
        and r["family"] == family
        and r["true_count"]
        for name, value in r["parts"]
        if name != "small object"
    ]
    assert parts
    assert min(value for _, _, value in parts) >= 0.9, parts
