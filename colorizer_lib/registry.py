"""The one table of weight sets. The CLI, the widgets, the README's model table and the tests read it.

Each record says where a weight file comes from (mirrors in order), what architecture it needs, how
to check it and how to use it. Nothing else in the package branches on model names.
"""

from __future__ import annotations

from collections.abc import Callable
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
        tags: what the model is for (``image``, ``video``, ``embedded``).
        summary: what the model is good at, in a few plain words, for narrow lists (the notebooks' model
            picker shows ``name: summary``).
        render_factor_step: render factors must be multiples of this: 2 for DDColor, whose encoder halves the
            picture five times, so its input side (16 x render factor) must be a multiple of 32.
        ignore_keys: entries the file may hold that the model does not use (an old classification
            head, say); dropped after loading, before the strict check against the manifest.
        alternatives: the same model in other files (another host, layout or format, each with its own
            file name, size and checksum): a cached one is used before any download, and they are
            downloaded, in order, when every URL of this record fails (:func:`colorizer_lib.hub.load_weights`).
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
    summary: str = ""
    render_factor_step: int = 1
    ignore_keys: tuple[str, ...] = ()
    alternatives: tuple["WeightSpec", ...] = ()

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
        summary="vivid, detailed colour; tune the render factor",
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
        summary="steadier colour, for portraits, landscapes",
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
        summary="calm colour, steady from frame to frame",
        tags=("video",),
    ),
)


# DDColor (Kang et al., ICCV 2023): the authors' Hugging Face repositories (``PyTorchModelHubMixin``: a
# ``config.json`` and the weights file, ``pytorch_model.bin`` for these uploads; the mixin's newer
# ``model.safetensors`` name is tried next where no revision is pinned). Sizes and sha256s are those of the
# Hub's LFS records at the pinned revisions; where none is known (``ddcolor-paper``, ModelScope's copy) the
# sha256 of the first verified load is recorded and checked on later loads, as for DeOldify's files.
# ModelScope's ``pytorch_model.pt`` is the ``ddcolor`` model in another layout (``{'params': state_dict}``
# plus an unused classification head), so it is an alternative file, not a byte-identical mirror.
_DDCOLOR_LICENSE = "Apache-2.0 (DDColor's released weights, by Xiaoyang Kang et al., DAMO Academy)"
_DDCOLOR_HF = "https://huggingface.co/piddnad/{repo}/resolve/{revision}/{file}"
_DDCOLOR_HF_FILES = ("pytorch_model.bin", "model.safetensors")  # PyTorchModelHubMixin's names, older first
#: entries of the classification head that older DDColor code (and ModelScope's copy) saved; the model has none
DDCOLOR_LEGACY_KEYS = ("encoder.arch.head_cls.weight", "encoder.arch.head_cls.bias")
_DDCOLOR_MODELSCOPE_URL = ("https://modelscope.cn/api/v1/models/damo/cv_ddcolor_image-colorization/repo"
                           "?Revision=master&FilePath=pytorch_model.pt")


def _hf_urls(repo: str, revision: str) -> tuple[str, ...]:
    """The weights file of a Hugging Face ``PyTorchModelHubMixin`` repository: the file known at a pinned
    revision, else each of the mixin's file names in turn (a missing one answers 404; the next is tried)."""
    files = _DDCOLOR_HF_FILES[:1] if revision != "main" else _DDCOLOR_HF_FILES
    return tuple(_DDCOLOR_HF.format(repo=repo, revision=revision, file=f) for f in files)


def _ddcolor(name: str, arch: str, repo: str, revision: str, description: str, **fields) -> WeightSpec:
    return WeightSpec(name=name, arch=arch, filename=f"{repo}.bin", urls=_hf_urls(repo, revision),
                      license=_DDCOLOR_LICENSE, default_render_factor=32, render_factor_step=2,
                      description=description, **fields)


_DDCOLOR_SPECS = (
    _ddcolor(
        "ddcolor", "ddcolor-large", "ddcolor_modelscope", "060f67494e31883a4b13cb27f889f3154847ada4",
        "DDColor (2023, 228 M parameters): the authors' recommended model for photos in general; natural, vivid "
        "colours, and in a published comparison closer to the true colours than DeOldify.",
        aliases=("ddcolor-modelscope", "ddcolor_modelscope"),
        size=911_914_869, sha256="d81711971ec59200da26d5e8a1afae8dd3778d495ea8ad7a7dadc769f403f7e7",
        summary="natural, vivid colour for most photos", tags=("image", "video"),
        alternatives=(WeightSpec(
            name="ddcolor (ModelScope's copy)", arch="ddcolor-large", filename="ddcolor_modelscope.pt",
            urls=(_DDCOLOR_MODELSCOPE_URL,), ignore_keys=DDCOLOR_LEGACY_KEYS, approx_download_mb=912,
            license=_DDCOLOR_LICENSE, default_render_factor=32, render_factor_step=2,
            description="ModelScope's file of `ddcolor`."),),
    ),
    _ddcolor(
        "ddcolor-paper", "ddcolor-large", "ddcolor_paper", "main",
        "DDColor exactly as in its paper (trained on ImageNet photos): for reproducing the paper's results; "
        "for your own photos `ddcolor` is usually the better choice.",
        aliases=("ddcolor_paper",), approx_download_mb=912, summary="the paper's version, for comparisons",
        tags=("image",),
    ),
    _ddcolor(
        "ddcolor-artistic", "ddcolor-large", "ddcolor_artistic", "aa10f72fffc89a6658e37b48556050b4d9a26f63",
        "DDColor trained on extra artistic images and without its push for colourfulness: more varied, calmer "
        "colours and fewer odd colour blotches (such as red patches).",
        aliases=("ddcolor_artistic",), size=911_914_869,
        sha256="5a076e84efce59848394f572a105f7b78f7f6e917f615d1ee88537241b96dca3",
        summary="varied colour, fewer odd blotches", tags=("image",),
    ),
    _ddcolor(
        "ddcolor-tiny", "ddcolor-tiny", "ddcolor_paper_tiny", "cf9fd99c1d7472689ec7413441c1b799a51866a3",
        "DDColor's small version (55 M parameters): a quarter of the download and about 2.7x less work per "
        "photo, the DDColor to use on a CPU; colours a little less reliable than `ddcolor`'s.",
        aliases=("ddcolor_paper_tiny", "ddcolor-t"), size=220_372_845,
        sha256="8a1277bc90a1bfbb6d2d83933a9a6bc821931879ca93e26e4fcec12165d41fce",
        summary="lighter DDColor, quicker on a CPU", tags=("image", "video"),
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
    summary="built in, no download; quick on any computer",
    tags=("image", "video", "embedded"),
)

_SPECS = _SPECS + _DDCOLOR_SPECS + (_COMPACT,)


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


#: the models ``Colorizer.from_pretrained(None)`` / ``colorize image`` without ``--model`` may pick, best first
#: (DDColor measured closer to the true colours than DeOldify Stable in a published 23-photo comparison:
#: CIEDE2000 8.5 against 9.1); of these only :data:`DEFAULT_DOWNLOADS` are downloaded for a default run.
DEFAULT_PREFERENCE = ("ddcolor", "ddcolor-artistic", "ddcolor-paper", "artistic", "stable")
#: what a default run downloads when none of :data:`DEFAULT_PREFERENCE` is cached: DeOldify Artistic (255 MB,
#: a quarter of DDColor-L's 912 MB), then Stable; DDColor is used by default once it is in the cache
#: (`colorize models --download ddcolor`, or any run with ``--model ddcolor``).
DEFAULT_DOWNLOADS = ("artistic", "stable")


def default_model_order(is_cached: Callable[[WeightSpec], bool]) -> tuple[str, ...]:
    """The names to try, in order, when no model is named ("the best model available"): the models of
    :data:`DEFAULT_PREFERENCE` for which ``is_cached(spec)`` holds, best first, then :data:`DEFAULT_DOWNLOADS`
    (cached or not, in that order).

    ``is_cached`` is ``lambda spec: colorizer_lib.hub.is_cached(spec, cache_dir)`` (a file's presence and size
    only: no weights are read, nothing is created). The caller loads the first name that loads and verifies,
    and falls back to the bundled model when none does.
    """
    cached = [name for name in DEFAULT_PREFERENCE if is_cached(get_spec(name))]
    return tuple(dict.fromkeys([*cached, *DEFAULT_DOWNLOADS]))


def ignored_keys() -> tuple[str, ...]:
    """Every entry some record's file may hold unused (the records' and their alternatives' ``ignore_keys``):
    what a local weights file of unknown model can drop before its architecture is identified
    (``hub.load_state_dict(path, drop_keys=ignored_keys())``: ModelScope's ``pytorch_model.pt`` of DDColor)."""
    keys = [k for spec in _SPECS for record in (spec, *spec.alternatives) for k in record.ignore_keys]
    return tuple(dict.fromkeys(keys))


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


def short_license(spec: WeightSpec) -> str:
    """The licence's name alone, for narrow tables (``MIT``, ``Apache-2.0``); :attr:`WeightSpec.license`
    has the whole statement (whose weights, the training data's terms). A licence with terms beyond its
    name (our own model's training data) is marked ``+ data terms``."""
    text = spec.license.removeprefix("weights: ")
    name = text.split(" (", 1)[0].split(";", 1)[0].strip()
    return name + (" + data terms" if ";" in text else "")


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
