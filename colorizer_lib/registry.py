"""The one table of weight sets. The CLI, the widgets, the README's model table and the tests read it.

Each record says where a weight file comes from (mirrors in order), what architecture it needs, how
to check it and how to use it. Nothing else in the package branches on model names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, ModelArgumentError, WeightsError

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class WeightSpec:
    """One downloadable (or bundled) weight set.

    Attributes:
        name: canonical name used on the command line (``artistic``).
        aliases: other accepted names (case-insensitive), e.g. the original file stem.
        arch: key of :data:`colorizer_lib.models.ARCHITECTURES`.
        filename: file name in the cache directory.
        urls: download URLs, tried in order (mirrors). Empty for bundled weights.
        size: exact byte size when known, else None.
        sha256: hex digest when known, else None (then the digest of the first verified load is
            recorded and checked on later loads).
        license: licence of the weights (and, for our own, of the training data).
        default_render_factor: the render factor the model was tuned for.
        description: one honest paragraph for users.
        bundled: path of weights shipped inside the package (no download needed), else None.
        approx_download_mb: rough download size for display when ``size`` is unknown.
        dtype: storage type of the floating tensors in the file.
    """

    name: str
    arch: str
    filename: str
    default_render_factor: int
    description: str
    license: str
    urls: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    bundled: Path | None = None
    approx_download_mb: int | None = None
    dtype: str = "float32"
    tags: tuple[str, ...] = field(default=())

    @property
    def manifest(self) -> dict[str, dict]:
        """What the file must hold: ``{key: {"shape": [...], "dtype": ...}}`` for :attr:`arch`
        stored as :attr:`dtype`. :mod:`colorizer_lib.hub` checks every download against it before
        the file takes its final name, and every cached file before use."""
        from .models import expected_state  # torch: imported when needed, so `colorize --help` stays fast

        return expected_state(self.arch, self.dtype)


_DEOLDIFY_LICENSE = "MIT (DeOldify's released weights, by Jason Antic and Dana Kelley)"

_SPECS: tuple[WeightSpec, ...] = (
    WeightSpec(
        name="artistic",
        aliases=("colorizeartistic_gen", "deoldify-artistic", "art"),
        arch="deoldify-deep-resnet34",
        filename="ColorizeArtistic_gen.pth",
        urls=(
            "https://data.deepai.org/deoldify/ColorizeArtistic_gen.pth",
            "https://huggingface.co/spensercai/DeOldify/resolve/main/ColorizeArtistic_gen.pth",
        ),
        approx_download_mb=255,
        license=_DEOLDIFY_LICENSE,
        default_render_factor=35,
        description=(
            "DeOldify Artistic (ResNet-34 deep U-Net, 63.6 M parameters): the most vibrant and detailed "
            "colours, but it often needs render-factor tuning and is weaker on nature scenes and portraits."
        ),
        tags=("image",),
    ),
    WeightSpec(
        name="stable",
        aliases=("colorizestable_gen", "deoldify-stable"),
        arch="deoldify-wide-resnet101",
        filename="ColorizeStable_gen.pth",
        urls=(
            "https://www.dropbox.com/s/axsd2g85uyixaho/ColorizeStable_gen.pth?dl=0",
            "https://huggingface.co/spensercai/DeOldify/resolve/main/ColorizeStable_gen.pth",
        ),
        approx_download_mb=874,
        license=_DEOLDIFY_LICENSE,
        default_render_factor=35,
        description=(
            "DeOldify Stable (ResNet-101 wide U-Net, 218 M parameters): best for landscapes and portraits, "
            "fewer 'zombie' faces and glitches, less colourful than Artistic."
        ),
        tags=("image",),
    ),
    WeightSpec(
        name="video",
        aliases=("colorizevideo_gen", "deoldify-video"),
        arch="deoldify-wide-resnet101",
        filename="ColorizeVideo_gen.pth",
        urls=(
            "https://data.deepai.org/deoldify/ColorizeVideo_gen.pth",
            "https://huggingface.co/spensercai/DeOldify/resolve/main/ColorizeVideo_gen.pth",
        ),
        approx_download_mb=874,
        license=_DEOLDIFY_LICENSE,
        default_render_factor=21,
        description=(
            "DeOldify Video (same architecture as Stable, trained for temporal steadiness): the least "
            "colourful and the smoothest; the default for film."
        ),
        tags=("video",),
    ),
)


_COMPACT = WeightSpec(
    name="compact",
    aliases=("embedded", "colorizer-compact"),
    arch="compact-efficientnet-lite0",
    filename="compact.safetensors",
    bundled=PACKAGE_DIR / "weights" / "compact.safetensors",
    size=10_500_116,
    sha256="1f32c49d1f60a766793d304f6bef7d081440729a8b25db0aa9d0e383c86918c7",
    dtype="float16",
    license=(
        "weights: MIT (trained by the Colorizer project); training data (benchmarks/train_v2/README.md): "
        "MIT MiniPlaces, a Places2 subset (research and education use); Tiny ImageNet, ImageNet DET photos "
        "and an ImageNet sample (ImageNet research terms); Caltech-101 and PACS photos (research); BSDS500 "
        "(Berkeley research set); Microsoft PetImages and public cat/dog-breed and flower collections (no "
        "terms stated); a clothing photo set (CC0); Sun-Hays and Urban100 scenes (no ownership claimed); "
        "Debian package photos (public domain, CC0, CC-BY-SA)"
    ),
    default_render_factor=16,
    description=(
        "Colorizer's own embedded model (EfficientNet-Lite0 U-Net, fp16, ships inside the package, no "
        "download), v2: trained on about 21,500 photos of scenes, animals and objects; fast on a laptop CPU "
        "and good at skies, water, foliage, landscapes and interiors; colours are muted where it is unsure, "
        "and skin tones are weaker than Artistic's (few portraits in its training photos)."
    ),
    tags=("image", "video", "embedded"),
)

_SPECS = _SPECS + (_COMPACT,)


def list_specs() -> list[WeightSpec]:
    """All registered weight sets, in display order."""
    return list(_SPECS)


def get_spec(name: str) -> WeightSpec:
    """The record whose name or alias is ``name`` (case-insensitive).

    Raises:
        ModelArgumentError: unknown name (bad usage; the message lists the known ones).
    """
    key = name.strip().lower()
    for spec in _SPECS:
        if key == spec.name or key in spec.aliases:
            return spec
    known = ", ".join(s.name for s in _SPECS)
    raise ModelArgumentError(f"unknown model {name!r}. Known models: {known}; or pass the path of a .pth/.safetensors "
                             f"file.")


def register(spec: WeightSpec) -> None:
    """Add a record (replacing one of the same name); for embedded models and plugins."""
    global _SPECS
    _SPECS = tuple(s for s in _SPECS if s.name != spec.name) + (spec,)


def size_text(spec: WeightSpec) -> str:
    """Download size for display: exact, approximate, bundled, or "unknown"."""
    if spec.size:
        return f"{spec.size / 1e6:.0f} MB"
    if spec.approx_download_mb:
        return f"~{spec.approx_download_mb} MB"
    if spec.bundled is not None and spec.bundled.is_file():
        return f"{spec.bundled.stat().st_size / 1e6:.0f} MB (bundled)"
    return "unknown"


def markdown_table() -> str:
    """The README's model table, generated from the records (a test keeps the README in sync)."""
    lines = ["| model | architecture | render factor | download | licence | notes |",
             "|---|---|---|---|---|---|"]
    for spec in list_specs():
        lines.append(f"| `{spec.name}` | {spec.arch} | {spec.default_render_factor} | {size_text(spec)} | "
                     f"{spec.license} | {spec.description} |")
    return "\n".join(lines)


def resolve_arch(name: str) -> str:
    """Registered model name (``artistic``...), ``compact`` or an architecture name -> architecture name
    (for models with random weights: ``colorize bench``, ``colorize export --random-weights``)."""
    from .models import ARCHITECTURES  # torch: imported when needed, so `colorize --help` stays fast

    if name in ARCHITECTURES:
        return name
    try:
        return get_spec(name).arch
    except WeightsError:
        matches = sorted(a for a in ARCHITECTURES if a.startswith(f"{name}-"))
        if matches:
            return matches[0]
        raise InputError(f"unknown model {name!r} for the benchmark; use artistic, stable, video, compact "
                         f"or an architecture name ({', '.join(sorted(ARCHITECTURES))}).") from None
