"""Synthetic scenes with known depth, known ownership and every hidden surface.

Each scene is a stack of surfaces, farthest first. Surface 0, the backdrop, fills the
canvas; the others are textured shapes drawn with anti-aliased edges (4×4 supersampled
coverage). Every surface is rendered in full before it is composited, so the truth behind
every occluder is known (what a parallax shift must reveal), and so is each surface's
true visible share of every pixel. A surface's thin structures and small objects are also
recorded as :class:`Part` s, so a metric can score them on their own.

Families (:data:`FAMILIES`; canvas 384×288 unless asked otherwise):

- ``blobs``: the original easy scenes: a flat textured background and convex blobs
  (disc, ellipse, polygon) at evenly spaced depths 0.1 … 0.9, strong colour edges, no
  thin parts. ``seed`` picks 3, 4 or 5 surfaces (``3 + seed % 3``);
  :func:`make_scene` makes any count from 2 to 5.
- ``floor``: a ground plane sloping across the whole frame (nearness a ramp from 0.05 at
  the top row to 0.85 at the bottom, slightly tilted sideways) with three upright objects
  standing on it: each object's nearness is the floor's at its bottom row, so its bottom
  edge is no depth edge at all. One object carries a stick (1–4 px, by seed) rising from
  its top, another a 1 px wire hanging from its side; both are the object's own surface
  at the object's depth.
- ``wall``: a wall receding across the frame sideways (nearness 0.05 → 0.5, left or right
  by seed) with a post carrying a 2 px stick (0.62), a small object (0.5–1 % of the
  canvas, 0.70) and a spoked wheel (0.88): rim 3 px and six 2 px spokes (a part) round
  a hub, the wall showing between the spokes.
- ``small``: a flat background (0.08), one medium object (0.40) and three small objects
  covering about 0.4 %, 1.0 % and 1.8 % of the canvas at their own depths (0.56, 0.76,
  0.90); one of them stands in front of the medium object.
- ``close``: a background (0.1) and two overlapping objects only 0.05 apart in depth
  (0.45 and 0.50, the nearer in front), and a third object (0.82).
- ``camouflage``: objects at 0.40, 0.72 and 0.90 whose colours are within about 0.05 of
  the colour behind them (different texture, similar colour): edges a colour-driven edge
  step cannot see, depth edges the model blurs.

Depth truth is :attr:`Scene.nearness` (the visible surface's nearness, 1 = nearest);
:func:`degrade_depth` turns it into what a monocular model gives. :meth:`Scene.groupings`
says which surfaces a correct stack of a given layer count may put together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

SUPERSAMPLE = 4
WIDTH, HEIGHT = 384, 288
MIN_VISIBLE_SHARE = 0.03
"""Blobs family: every surface shows on at least this share of the canvas."""
MIN_SHOWN = 0.5
"""Other families: every object shows at least this share of its own coverage."""
MIN_PART_SHOWN = 0.8
"""…and every part at least this share of its own."""
GROUPING_SLACK = 1.5
"""A grouping of surfaces into fewer layers is acceptable within this factor of the least
parallax error (:meth:`Scene.groupings`)."""


@dataclass(frozen=True)
class Part:
    """A thin structure (stick, wire, spokes) or a small object, scored on its own.

    ``coverage`` is the part's own anti-aliased coverage without the body it is attached
    to (for a small object: the whole object); ``surface`` is the surface it belongs to."""

    name: str
    surface: int
    coverage: np.ndarray  # float32 (H, W)


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # float32 (H, W, 3): the composited photo
    surfaces: list[np.ndarray]  # float32 (H, W, 3) each surface's full texture, farthest first
    coverage: list[np.ndarray]  # float32 (H, W) each surface's own anti-aliased coverage
    ownership: list[np.ndarray]  # float32 (H, W) visible share of each surface; sums to 1
    nearness: np.ndarray  # float32 (H, W) exact depth of the visible surface, 1 = nearest
    levels: list[float]  # each surface's level: its median nearness (the backdrop's least)
    depths: list[np.ndarray] = field(default_factory=list)  # each surface's full nearness
    parts: tuple[Part, ...] = ()
    family: str = "blobs"
    seed: int = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    @property
    def name(self) -> str:
        return f"{self.family}/{self.seed}"

    def groupings(self, count: int, *, slack: float = GROUPING_SLACK) -> list[Grouping]:
        """The ways a correct stack of ``count`` layers may group the surfaces, best first.

        With at least as many layers as surfaces: one way, each surface its own group
        (extra layers may split a surface; :func:`bench.metrics.surface_ious` takes the
        union). With fewer, whole surfaces merge with depth-adjacent ones (contiguous runs
        in level order), and a grouping is acceptable when the parallax error its merges
        add (Σ over visible pixels of (nearness − group mean)², the error flat layers
        show a viewer, less each surface's own spread) is at most ``slack`` × the least
        any grouping adds: near-ties are all accepted, a merge across a wide gap is not."""
        order = [int(i) for i in np.argsort(self.levels, kind="stable")]
        if count >= len(order):
            return [[[i] for i in order]]
        moments = [_moments(self.ownership[i], self.depths[i]) for i in order]
        alone = sum(_spread([m]) for m in moments)
        scored = []
        for cuts in itertools.combinations(range(1, len(order)), count - 1):
            bounds = [0, *cuts, len(order)]
            runs = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
            error = sum(_spread([moments[i] for i in run]) for run in runs) - alone
            scored.append((error, [[order[i] for i in run] for run in runs]))
        scored.sort(key=lambda item: item[0])
        least = scored[0][0]
        return [grouping for error, grouping in scored if error <= slack * least + 1e-12]

    def group_truths(self, grouping: Grouping) -> list[np.ndarray]:
        """The visible share of each group of ``grouping`` (the merged truth)."""
        return [
            sum((self.ownership[i] for i in group), np.zeros_like(self.nearness))
            for group in grouping
        ]


Grouping = list[list[int]]
"""Surfaces grouped into layers: one list of surface indices per layer, farthest first."""


def _moments(weight: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """Σw, Σw·v, Σw·v² of ``values`` weighted by ``weight``."""
    w = weight.astype(np.float64)
    v = values.astype(np.float64)
    return float(w.sum()), float((w * v).sum()), float((w * v * v).sum())


def _spread(moments: list[tuple[float, float, float]]) -> float:
    """Σw·(v − mean)² of the union of weighted sets given by their moments."""
    total = sum(m[0] for m in moments)
    first = sum(m[1] for m in moments)
    second = sum(m[2] for m in moments)
    return second - first * first / max(total, 1e-12)


# --- textures and drawing ---------------------------------------------------------------------


def textured(rng: np.random.Generator, height: int, width: int, base: np.ndarray) -> np.ndarray:
    """A colour gradient, oriented stripes and smooth noise: texture a fill must continue."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(10, 28)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    stripes = 0.08 * np.sin(phase)[..., None] * rng.uniform(0.5, 1.0, size=3)
    gradient = (xx / width - 0.5)[..., None] * rng.uniform(-0.15, 0.15, size=3)
    noise = rng.normal(0, 1, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    noise = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * 0.04
    image = base[None, None, :] + stripes + gradient + noise
    result: np.ndarray = np.clip(image, 0.0, 1.0).astype(np.float32)
    return result


def _canvas(height: int, width: int) -> np.ndarray:
    """A supersampled drawing canvas (uint8, 0 or 255)."""
    return np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), dtype=np.uint8)


def _down(big: np.ndarray) -> np.ndarray:
    """A supersampled mask as anti-aliased coverage at the canvas size."""
    height, width = big.shape[0] // SUPERSAMPLE, big.shape[1] // SUPERSAMPLE
    small = cv2.resize(
        big.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA
    )
    result: np.ndarray = np.clip(small, 0.0, 1.0).astype(np.float32)
    return result


def _pt(x: float, y: float) -> tuple[int, int]:
    """Canvas coordinates (pixel centres at +0.5) on the supersampled canvas."""
    return round(x * SUPERSAMPLE), round(y * SUPERSAMPLE)


def _line(big: np.ndarray, points: np.ndarray, thickness: float) -> None:
    """A polyline ``thickness`` canvas pixels wide."""
    scaled = np.round(points * SUPERSAMPLE).astype(np.int32)
    width = max(1, round(thickness * SUPERSAMPLE))
    cv2.polylines(big, [scaled], False, 255, thickness=width, lineType=cv2.LINE_8)


def _blob(
    rng: np.random.Generator,
    height: int,
    width: int,
    kind: str,
    *,
    centre: tuple[float, float],
    size: float,
) -> np.ndarray:
    """A convex-ish blob (disc, ellipse or 7-gon) around ``centre``, ``size`` its radius."""
    big = _canvas(height, width)
    cx, cy = _pt(*centre)
    s = size * SUPERSAMPLE
    if kind == "disc":
        cv2.circle(big, (cx, cy), int(s), 255, -1, lineType=cv2.LINE_8)
    elif kind == "ellipse":
        axes = (int(s * 1.4), int(s * 0.8))
        cv2.ellipse(big, (cx, cy), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=7))
        radii = s * rng.uniform(0.7, 1.3, size=7)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(big, [points.astype(np.int32)], 255)
    return big


def _upright(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    x: float,
    base: float,
    size: tuple[float, float],
) -> np.ndarray:
    """An upright object (a vase-like profile, flat bottom) standing with its bottom on
    row ``base``, centred on column ``x``; ``size`` = (width, height) in pixels."""
    w, h = size
    t = np.linspace(0.0, 1.0, 24)
    bulge = 1.0 + 0.25 * np.sin(np.pi * t * rng.uniform(1.0, 2.0) + rng.uniform(0, np.pi))
    half = 0.5 * w * bulge / bulge.max()
    ys = base - t * h
    outline = np.concatenate(
        [np.stack([x - half, ys], axis=1), np.stack([x + half, ys], axis=1)[::-1]]
    )
    big = _canvas(height, width)
    cv2.fillPoly(big, [np.round(outline * SUPERSAMPLE).astype(np.int32)], 255)
    cv2.ellipse(big, _pt(x, base - h), _pt(half[-1], half[-1] * 0.5), 0, 180, 360, 255, -1)
    return big


def _stick(
    rng: np.random.Generator, big_body: np.ndarray, *, thickness: float, length: float
) -> np.ndarray:
    """A straight stick rising from the top of a body, starting a few pixels inside it."""
    rows, cols = np.nonzero(big_body)
    top = rows.min() / SUPERSAMPLE
    columns = cols[rows == rows.min()] / SUPERSAMPLE
    x0 = float(columns.mean())
    angle = np.deg2rad(rng.uniform(-30, 30))
    start = (x0, top + 3.0)
    end = (x0 + length * np.sin(angle), top - length * np.cos(angle))
    big = np.zeros_like(big_body)
    _line(big, np.array([start, end]), thickness)
    return big


def _wire(
    rng: np.random.Generator, big_body: np.ndarray, *, thickness: float, reach: float
) -> np.ndarray:
    """A wire hanging from the side of a body: out by ``reach`` and down in a curve."""
    rows, cols = np.nonzero(big_body)
    middle = (rows.min() + rows.max()) // 2
    row_cols = cols[rows == middle]
    side = rng.choice([-1.0, 1.0])
    x0 = (row_cols.max() if side > 0 else row_cols.min()) / SUPERSAMPLE - 3.0 * side
    y0 = middle / SUPERSAMPLE
    t = np.linspace(0.0, 1.0, 40)[:, None]
    p0, p1 = np.array([x0, y0]), np.array([x0 + side * reach * 1.2, y0 - reach * 0.3])
    p2 = np.array([x0 + side * reach, y0 + reach * 0.9])
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    big = np.zeros_like(big_body)
    _line(big, curve, thickness)
    return big


def _wheel(
    height: int, width: int, *, centre: tuple[float, float], radius: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A wheel: (hub, rim and spokes). The rim is 3 px wide, six spokes 2 px."""
    hub, spokes = _canvas(height, width), _canvas(height, width)
    cv2.circle(hub, _pt(*centre), round(radius * 0.22 * SUPERSAMPLE), 255, -1)
    cv2.circle(spokes, _pt(*centre), round((radius - 1.5) * SUPERSAMPLE), 255, 3 * SUPERSAMPLE)
    offset = rng.uniform(0, np.pi / 3)
    for k in range(6):
        angle = offset + k * np.pi / 3
        end = (centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle))
        _line(spokes, np.array([centre, end]), 2.0)
    return hub, spokes


def _palette(rng: np.random.Generator, count: int, *, apart: float = 0.25) -> np.ndarray:
    """``count`` base colours, each at least ``apart`` (max channel difference) from the
    others: strong colour edges unless a family wants weak ones."""
    colours: list[np.ndarray] = []
    while len(colours) < count:
        candidate = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
        if all(np.abs(candidate - c).max() >= apart for c in colours):
            colours.append(candidate)
    return np.stack(colours)


# --- composing a scene ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """One surface before compositing: its texture, nearness, body (supersampled; None for
    the backdrop) and named parts (supersampled)."""

    texture: np.ndarray
    depth: np.ndarray
    body: np.ndarray | None
    parts: tuple[tuple[str, np.ndarray], ...] = ()


def _compose(specs: list[_Spec], *, family: str, seed: int) -> Scene:
    """Composite the surfaces back to front and record every truth."""
    height, width = specs[0].depth.shape
    coverage: list[np.ndarray] = []
    parts: list[Part] = []
    for index, spec in enumerate(specs):
        if spec.body is None:
            coverage.append(np.ones((height, width), dtype=np.float32))
            continue
        union = spec.body.copy()
        for name, big in spec.parts:
            np.maximum(union, big, out=union)
            own = np.where(spec.body > 0, 0, big).astype(np.uint8)
            parts.append(Part(name=name, surface=index, coverage=_down(own)))
        coverage.append(_down(union))
    image = specs[0].texture * coverage[0][..., None]
    for spec, cover in zip(specs[1:], coverage[1:], strict=True):
        image = cover[..., None] * spec.texture + (1 - cover[..., None]) * image
    ownership = _ownership(coverage)
    owner = np.argmax(np.stack(ownership), axis=0)
    nearness = np.choose(owner, [spec.depth for spec in specs])
    levels = [float(specs[0].depth.min())] + [
        float(np.median(spec.depth[cover > 0.5]))
        for spec, cover in zip(specs[1:], coverage[1:], strict=True)
    ]
    return Scene(
        image=image.astype(np.float32),
        surfaces=[spec.texture for spec in specs],
        coverage=coverage,
        ownership=ownership,
        nearness=nearness.astype(np.float32),
        levels=levels,
        depths=[spec.depth.astype(np.float32) for spec in specs],
        parts=tuple(parts),
        family=family,
        seed=seed,
    )


def _ownership(coverage: list[np.ndarray]) -> list[np.ndarray]:
    """Each surface's visible share: its coverage times every nearer one's transparency."""
    ownership = []
    remaining = np.ones(coverage[0].shape, dtype=np.float32)
    for cover in reversed(coverage):
        ownership.append(cover * remaining)
        remaining = remaining * (1 - cover)
    ownership.reverse()
    return ownership


def _well_shown(scene: Scene) -> bool:
    """Every object and part is mostly visible (not hidden behind another)."""
    for cover, own in zip(scene.coverage[1:], scene.ownership[1:], strict=True):
        if own.sum() < MIN_SHOWN * cover.sum():
            return False
    return all(
        (scene.ownership[p.surface] * (p.coverage > 0)).sum() >= MIN_PART_SHOWN * p.coverage.sum()
        for p in scene.parts
    )


def _flat(height: int, width: int, level: float, *, slope: float = 0.02) -> np.ndarray:
    """Nearness of a surface facing the camera, tilted by ``slope`` top to bottom."""
    yy = np.mgrid[0:height, 0:width][0].astype(np.float32) / height
    result: np.ndarray = (level + slope * (yy - 0.5)).astype(np.float32)
    return result


# --- the families -----------------------------------------------------------------------------


Builder = Callable[[np.random.Generator, int, int], list[_Spec]]


def _floor(rng: np.random.Generator, height: int, width: int) -> list[_Spec]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt = rng.uniform(-0.03, 0.03)
    floor = 0.05 + 0.8 * (yy / (height - 1)) ** 1.2 + tilt * (xx / width - 0.5)
    colours = _palette(rng, 4)
    specs = [_Spec(textured(rng, height, width, colours[0]), floor.astype(np.float32), None)]
    levels = np.array([0.30, 0.52, 0.64]) + rng.uniform(-0.015, 0.015, size=3)
    slots = rng.permutation([0.2, 0.5, 0.8]) + rng.uniform(-0.04, 0.04, size=3)
    thin_owner = int(rng.integers(1, 3))  # the farthest object's top is too near the frame's
    wire_owner = int(rng.choice([i for i in range(3) if i != thin_owner]))
    thickness = float(rng.integers(1, 5))
    for index, (level, slot) in enumerate(zip(levels, slots, strict=True)):
        x = float(slot * width)
        base = float((height - 1) * ((level - 0.05) / 0.8) ** (1 / 1.2))
        depth_here = 0.05 + 0.8 * (base / (height - 1)) ** 1.2 + tilt * (x / width - 0.5)
        scale = 0.6 + 0.8 * level  # nearer objects look larger
        size = (width * rng.uniform(0.11, 0.15) * scale, height * rng.uniform(0.3, 0.4) * scale)
        body = _upright(rng, height, width, x=x, base=base, size=size)
        parts: list[tuple[str, np.ndarray]] = []
        if index == thin_owner:
            parts.append(("stick", _stick(rng, body, thickness=thickness, length=45.0)))
        if index == wire_owner:
            parts.append(("wire", _wire(rng, body, thickness=1.0, reach=30.0)))
        texture = textured(rng, height, width, colours[index + 1])
        specs.append(
            _Spec(texture, np.full((height, width), depth_here, np.float32), body, tuple(parts))
        )
    return specs


def _wall(rng: np.random.Generator, height: int, width: int) -> list[_Spec]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    across = xx / (width - 1) if rng.random() < 0.5 else 1.0 - xx / (width - 1)
    wall = 0.05 + 0.45 * across + 0.02 * (yy / height - 0.5)
    colours = _palette(rng, 4)
    specs = [_Spec(textured(rng, height, width, colours[0]), wall.astype(np.float32), None)]
    slots = rng.permutation([0.2, 0.5, 0.8]) + rng.uniform(-0.03, 0.03, size=3)
    post = _upright(
        rng,
        height,
        width,
        x=float(slots[0] * width),
        base=height * rng.uniform(0.8, 0.95),
        size=(width * 0.12, height * 0.45),
    )
    stick = _stick(rng, post, thickness=2.0, length=40.0)
    radius = float(np.sqrt(0.01 * width * height / np.pi))
    where = (slots[1] * width, height * rng.uniform(0.3, 0.7))
    small = _blob(rng, height, width, "polygon", centre=where, size=radius)
    hub, spokes = _wheel(
        height,
        width,
        centre=(float(slots[2] * width), height * rng.uniform(0.4, 0.6)),
        radius=min(width, height) * 0.2,
        rng=rng,
    )
    for level, colour, body, parts in (
        (0.62, colours[1], post, (("stick", stick),)),
        (0.70, colours[2], small, (("small object", small),)),
        (0.88, colours[3], hub, (("spokes", spokes),)),
    ):
        texture = textured(rng, height, width, colour)
        body_only = np.zeros_like(body) if parts[0][0] == "small object" else body
        specs.append(_Spec(texture, _flat(height, width, level), body_only, parts))
    return specs


def _small(rng: np.random.Generator, height: int, width: int) -> list[_Spec]:
    colours = _palette(rng, 5)
    specs = [
        _Spec(
            textured(rng, height, width, colours[0]), _flat(height, width, 0.08, slope=0.04), None
        )
    ]
    centre = (width * rng.uniform(0.3, 0.7), height * rng.uniform(0.4, 0.6))
    medium = _blob(rng, height, width, "ellipse", centre=centre, size=min(width, height) * 0.17)
    specs.append(
        _Spec(textured(rng, height, width, colours[1]), _flat(height, width, 0.40), medium)
    )
    front = int(rng.integers(0, 3))
    for index, (level, share) in enumerate(((0.56, 0.004), (0.76, 0.010), (0.90, 0.018))):
        radius = float(np.sqrt(share * width * height / np.pi))
        if index == front:
            where = (centre[0] + rng.uniform(-20, 20), centre[1] + rng.uniform(-12, 12))
        else:
            where = (width * rng.uniform(0.08, 0.92), height * rng.uniform(0.1, 0.9))
        kind = ["disc", "polygon", "disc"][index]
        shape = _blob(rng, height, width, kind, centre=where, size=radius)
        texture = textured(rng, height, width, colours[index + 2])
        specs.append(
            _Spec(
                texture,
                _flat(height, width, level),
                np.zeros_like(shape),
                (("small object", shape),),
            )
        )
    return specs


def _close(rng: np.random.Generator, height: int, width: int) -> list[_Spec]:
    colours = _palette(rng, 4)
    specs = [
        _Spec(textured(rng, height, width, colours[0]), _flat(height, width, 0.1, slope=0.04), None)
    ]
    left = rng.random() < 0.5
    a_x = width * (0.32 if left else 0.62)
    a = _blob(
        rng, height, width, "ellipse", centre=(a_x, height * 0.5), size=min(width, height) * 0.2
    )
    b = _blob(
        rng,
        height,
        width,
        "polygon",
        centre=(a_x + width * rng.uniform(0.1, 0.14), height * rng.uniform(0.45, 0.6)),
        size=min(width, height) * 0.16,
    )
    c_x = width * (0.82 if left else 0.16)
    c = _blob(
        rng,
        height,
        width,
        "disc",
        centre=(c_x, height * rng.uniform(0.35, 0.65)),
        size=min(width, height) * 0.13,
    )
    for level, colour, body in (
        (0.45, colours[1], a),
        (0.50, colours[2], b),
        (0.82, colours[3], c),
    ):
        specs.append(_Spec(textured(rng, height, width, colour), _flat(height, width, level), body))
    return specs


def _camouflage(rng: np.random.Generator, height: int, width: int) -> list[_Spec]:
    base = rng.uniform(0.3, 0.7, size=3).astype(np.float32)
    specs = [_Spec(textured(rng, height, width, base), _flat(height, width, 0.1, slope=0.04), None)]
    slots = rng.permutation([0.25, 0.5, 0.75]) + rng.uniform(-0.04, 0.04, size=3)
    for index, level in enumerate((0.40, 0.72, 0.90)):
        colour = base + rng.choice([-1.0, 1.0], size=3) * rng.uniform(0.03, 0.05, size=3)
        centre = (float(slots[index] * width), height * rng.uniform(0.35, 0.65))
        kind = ["ellipse", "polygon", "disc"][index]
        body = _blob(
            rng,
            height,
            width,
            kind,
            centre=centre,
            size=min(width, height) * rng.uniform(0.15, 0.2),
        )
        specs.append(
            _Spec(
                textured(rng, height, width, colour.astype(np.float32)),
                _flat(height, width, level),
                body,
            )
        )
    return specs


FAMILIES: dict[str, Builder | None] = {
    "blobs": None,  # make_scene
    "floor": _floor,
    "wall": _wall,
    "small": _small,
    "close": _close,
    "camouflage": _camouflage,
}


def make(family: str, *, seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> Scene:
    """One scene of ``family`` (see the module docstring), reproducible by ``seed``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}")
    builder = FAMILIES[family]
    if builder is None:
        scene = make_scene(num_surfaces=3 + seed % 3, seed=seed, width=width, height=height)
        return replace(scene, family="blobs", seed=seed)
    rng = np.random.default_rng([seed, list(FAMILIES).index(family)])
    for _attempt in range(100):
        scene = _compose(builder(rng, height, width), family=family, seed=seed)
        if _well_shown(scene):
            return scene
    raise RuntimeError(f"no {family} scene with every surface and part shown for seed {seed}")


# --- the original blob scenes -----------------------------------------------------------------


def _shape_coverage(
    rng: np.random.Generator, height: int, width: int, kind: str, slot: float
) -> np.ndarray:
    """One anti-aliased shape centred near ``slot`` (0–1 across the width)."""
    cx = (slot + rng.uniform(-0.06, 0.06)) * width
    cy = rng.uniform(0.3, 0.7) * height
    size = rng.uniform(0.16, 0.26) * min(width, height)
    return _down(_blob(rng, height, width, kind, centre=(cx, cy), size=size))


def make_scene(
    *,
    num_surfaces: int,
    width: int = WIDTH,
    height: int = HEIGHT,
    seed: int = 0,
) -> Scene:
    """A ``blobs`` scene of ``num_surfaces`` surfaces (2–5), farthest first, by seed."""
    if not 2 <= num_surfaces <= 5:
        raise ValueError(f"num_surfaces must be 2–5, got {num_surfaces}")
    rng = np.random.default_rng(seed)
    for _attempt in range(100):
        scene = _draw_scene(rng, num_surfaces, width, height)
        if min(float(share.mean()) for share in scene.ownership) >= MIN_VISIBLE_SHARE:
            return scene
    raise RuntimeError(f"no scene with every surface visible for seed {seed}")


def _draw_scene(rng: np.random.Generator, num_surfaces: int, width: int, height: int) -> Scene:
    palette = rng.uniform(0.15, 0.85, size=(num_surfaces, 3)).astype(np.float32)
    levels = list(np.linspace(0.1, 0.9, num_surfaces))
    surfaces = [textured(rng, height, width, palette[i]) for i in range(num_surfaces)]
    kinds = ["disc", "ellipse", "polygon"]
    coverage = [np.ones((height, width), dtype=np.float32)]
    slots = rng.permutation(np.linspace(0.2, 0.8, num_surfaces - 1))
    coverage += [
        _shape_coverage(rng, height, width, kinds[i % len(kinds)], float(slots[i]))
        for i in range(num_surfaces - 1)
    ]
    image = surfaces[0].copy()
    for surface, cover in zip(surfaces[1:], coverage[1:], strict=True):
        image = cover[..., None] * surface + (1 - cover[..., None]) * image
    ownership = _ownership(coverage)
    slopes = [0.04] + [0.02] * (num_surfaces - 1)
    depths = [_flat(height, width, lvl, slope=sl) for lvl, sl in zip(levels, slopes, strict=True)]
    owner = np.argmax(np.stack(ownership), axis=0)
    nearness = np.choose(owner, depths)
    return Scene(
        image=image.astype(np.float32),
        surfaces=surfaces,
        coverage=coverage,
        ownership=ownership,
        nearness=nearness.astype(np.float32),
        levels=[float(v) for v in levels],
        depths=depths,
    )


# --- depth as a monocular model gives it ------------------------------------------------------


def degrade_depth(
    nearness: np.ndarray,
    *,
    factor: int = 4,
    blur_sigma: float = 1.0,
    noise: float = 0.01,
    bleed: int = 2,
    displacement: tuple[float, float] = (2.0, 6.0),
    bias: float = 0.02,
    seed: int = 0,
) -> np.ndarray:
    """Depth as a monocular model gives it: edges displaced and bled, then low resolution,
    blur and noise.

    1. ``bleed``: nearer surfaces' depth dilated by this many pixels all round (models
       fatten foreground objects);
    2. ``displacement``: the map moved by a smooth random field whose local shift is
       ``displacement[0]``–``[1]`` pixels in a direction that varies across the frame,
       so an object's depth spills into the background on one side and falls short of
       its edge on the other;
    3. ``factor``× smaller (area average), Gaussian blur of ``blur_sigma`` small pixels;
    4. Gaussian noise of ``noise`` and a smooth low-frequency bias of ±``bias``.

    ``bleed=0, displacement=(0, 0), bias=0`` gives the old mild degradation (low
    resolution, blur and noise only)."""
    rng = np.random.default_rng(seed)
    height, width = nearness.shape
    result: np.ndarray = nearness.astype(np.float32)
    if bleed > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * bleed + 1, 2 * bleed + 1))
        result = cv2.dilate(result, disc)
    if displacement[1] > 0:
        result = _displaced(result, rng, low=displacement[0], high=displacement[1])
    small = cv2.resize(result, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), blur_sigma)
    jitter = rng.normal(0, noise, blurred.shape)
    drift = _smooth_field(rng, blurred.shape, cells=(3, 4)) * bias
    degraded: np.ndarray = (blurred + jitter + drift).astype(np.float32)
    return degraded


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, ...], *, cells: tuple[int, int]
) -> np.ndarray:
    """A smooth random field in [-1, 1]: a few random values, cubic-interpolated."""
    coarse = rng.uniform(-1.0, 1.0, size=cells).astype(np.float32)
    field_: np.ndarray = np.clip(
        cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), -1.0, 1.0
    )
    return field_


def _displaced(
    values: np.ndarray, rng: np.random.Generator, *, low: float, high: float
) -> np.ndarray:
    """``values`` moved by a smooth field of local shifts ``low``–``high`` pixels long."""
    height, width = values.shape
    angle = _smooth_field(rng, values.shape, cells=(2, 3)) * np.pi
    length = low + (high - low) * (0.5 + 0.5 * _smooth_field(rng, values.shape, cells=(2, 3)))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = (xx - length * np.cos(angle)).astype(np.float32)
    map_y = (yy - length * np.sin(angle)).astype(np.float32)
    moved: np.ndarray = cv2.remap(
        values, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return moved
