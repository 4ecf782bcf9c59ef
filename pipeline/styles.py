"""Painterly styles: the `style` setting turned into a prompt and a negative prompt.

Common styles map to curated prompts written for Stable Diffusion 1.5; anything else is
free text placed into a generic painting template. Matching ignores case, spacing and
punctuation, so ``"Oil Painting"``, ``"oil-painting"`` and ``"oilpainting"`` are one style,
and a few aliases (``"watercolour"``, ``"sumi-e"``, ``"ukiyoe"``) name the same entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Shared by every style: what a painting restyle should never look like.
BASE_NEGATIVE = (
    "photo, photograph, photorealistic, 3d render, cgi, blurry, lowres, jpeg artifacts, "
    "text, watermark, signature, frame, border, deformed, disfigured"
)


@dataclass(frozen=True)
class StylePrompt:
    """What the diffusion model is asked for."""

    key: str  # the curated style's name, or "custom" for free text
    prompt: str
    negative_prompt: str


@dataclass(frozen=True)
class _Curated:
    prompt: str
    negative: str  # style-specific, added before BASE_NEGATIVE
    aliases: tuple[str, ...] = ()


# Prompts describe the medium (materials, marks, palette), never the subject: the subject
# comes from the photo through img2img and the depth ControlNet.
CURATED: dict[str, _Curated] = {
    "oil painting": _Curated(
        "an oil painting on canvas, thick impasto brushstrokes, rich saturated colors, "
        "visible canvas texture, painterly, fine art, masterpiece",
        "flat colors, smooth gradients, digital art",
        ("oil", "oils", "oil on canvas"),
    ),
    "watercolor": _Curated(
        "a watercolor painting, soft translucent washes, wet-on-wet bleeding edges, "
        "granulating pigment, white paper showing through, loose delicate brushwork",
        "thick paint, impasto, heavy outlines, oversaturated",
        ("watercolour", "water color", "water colour", "aquarelle"),
    ),
    "impressionist": _Curated(
        "an impressionist painting, short broken brushstrokes, dappled natural light, "
        "vibrant complementary colors, en plein air, in the manner of Monet and Renoir",
        "sharp details, hard edges, smooth shading",
        ("impressionism", "impressionistic", "monet"),
    ),
    "gouache": _Curated(
        "a gouache painting, opaque matte flat color areas, crisp shapes, subtle brush "
        "texture, illustration, vintage poster palette",
        "glossy, photographic texture, heavy noise",
        ("gouache painting",),
    ),
    "ink wash": _Curated(
        "a traditional East Asian ink wash painting, sumi-e, expressive black ink "
        "brushstrokes, graded ink tones, rice paper, generous empty space, monochrome",
        "color, saturated colors, oil paint, heavy texture",
        ("sumi e", "sumie", "ink wash painting", "ink painting", "chinese ink"),
    ),
    "pastel": _Curated(
        "a soft pastel drawing, chalky powdery strokes, blended soft colors, textured "
        "pastel paper, gentle light",
        "harsh contrast, glossy, oil paint, digital art",
        ("pastels", "soft pastel", "pastel drawing", "chalk pastel"),
    ),
    "pencil sketch": _Curated(
        "a graphite pencil sketch, fine cross-hatching, expressive contour lines, shading "
        "with pencil strokes, sketchbook paper, monochrome drawing",
        "color, paint, saturated, smooth shading",
        ("pencil", "sketch", "pencil drawing", "graphite", "drawing"),
    ),
    "ukiyo-e": _Curated(
        "an ukiyo-e Japanese woodblock print, bold black outlines, flat areas of color, "
        "Edo period, in the manner of Hokusai and Hiroshige, washi paper texture",
        "shading gradients, realistic lighting, oil paint",
        ("ukiyoe", "ukiyo e", "woodblock", "woodblock print", "japanese woodblock"),
    ),
    "charcoal": _Curated(
        "a charcoal drawing, rich deep blacks, smudged tonal values, expressive strokes, "
        "toned paper, monochrome",
        "color, saturated, clean digital lines",
        ("charcoal drawing",),
    ),
    "acrylic": _Curated(
        "an acrylic painting, bold vivid colors, confident brushstrokes, layered paint, "
        "contemporary painting on canvas",
        "dull colors, muddy, smooth airbrush",
        ("acrylic painting", "acrylics"),
    ),
    "van gogh": _Curated(
        "a post-impressionist oil painting in the manner of Vincent van Gogh, swirling "
        "energetic brushstrokes, thick impasto, vivid blues and yellows",
        "smooth shading, flat colors, photographic detail",
        ("post impressionist", "post-impressionism", "starry night"),
    ),
    "pointillism": _Curated(
        "a pointillist painting, composed of small distinct dots of pure color, in the "
        "manner of Georges Seurat, luminous optical color mixing",
        "brushstrokes, smooth gradients, lines",
        ("pointillist", "seurat"),
    ),
    "comic": _Curated(
        "a comic book illustration, bold ink outlines, cel shading, halftone dots, "
        "flat vibrant colors, graphic novel art",
        "painterly, blurry, realistic shading, photographic texture",
        ("comic book", "cartoon", "graphic novel"),
    ),
}

GENERIC_TEMPLATE = "a painting in the style of {style}, painterly, artistic, fine art, masterpiece"

_MAX_STYLE_CHARS = 200  # CLIP reads 77 tokens; a longer style would push the template out


def normalize_style(style: str) -> str:
    """Case-, spacing- and punctuation-insensitive key: ``"Ukiyo-E "`` → ``"ukiyoe"``."""
    return re.sub(r"[^0-9a-z]+", "", style.casefold())


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name, entry in CURATED.items():
        for alias in (name, *entry.aliases):
            key = normalize_style(alias)
            if key in index and index[key] != name:
                raise RuntimeError(f"style alias {alias!r} names both {index[key]!r} and {name!r}")
            index[key] = name
    return index


_INDEX = _build_index()


def known_styles() -> list[str]:
    """The curated style names, for documentation and the CLI."""
    return list(CURATED)


def build_prompt(style: str) -> StylePrompt:
    """The prompt and negative prompt for a `style` setting (curated or free text)."""
    cleaned = " ".join(style.split())
    if not cleaned:
        raise ValueError(f"style must name a style (e.g. 'oil painting'), got {style!r}")
    name = _INDEX.get(normalize_style(cleaned))
    if name is not None:
        entry = CURATED[name]
        return StylePrompt(name, entry.prompt, f"{entry.negative}, {BASE_NEGATIVE}")
    return StylePrompt(
        "custom",
        GENERIC_TEMPLATE.format(style=cleaned[:_MAX_STYLE_CHARS]),
        BASE_NEGATIVE,
    )
