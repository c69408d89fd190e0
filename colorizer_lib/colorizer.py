"""The Colorizer: a generator on a device, and DeOldify's image semantics around it.

Data path for one image (DESIGN.md):

    load -> luma at full resolution (kept) -> stretched to an S x S square, S = 16 * render_factor
    -> grey replicated to 3 channels -> ImageNet normalisation -> model -> denormalise, clamp
    -> chroma (U, V) at model resolution -> upsampled to the original size -> merged with the
    original luma -> RGB (alpha re-attached)

Everything after loading runs in torch on the model's device. Chroma is low-frequency and the eye
forgives it; luminance carries the detail, so the original's luminance survives untouched.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import __version__
from .color import compose_luma_chroma, denormalize_imagenet, grey_to_rgb, normalize_imagenet, rgb_to_chroma
from .errors import ColorizerOutOfMemoryError, RenderFactorError, VerificationError, WeightsError
from .models import available_architectures, build_generator
from .models.fold import fold_for_inference
from .registry import WeightSpec, get_spec, list_specs
from .runtime import call_in_chunks, default_cpu_dtype, pad_channels, prefers_channels_last

RENDER_FACTOR_RANGE = (2, 100)
"""Allowed render factors, inclusive. The model sees a square of ``16 * render_factor`` pixels."""

RENDER_BASE = 16

# Above this many pixels the final merge runs in horizontal strips, so a 100-megapixel photo never
# needs several full-size float copies at once.
_STRIP_PIXELS = 4_000_000
_STRIP_ROWS = 512


# --------------------------------------------------------------------------------------------------
# devices, dtypes, errors


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; strings such as ``"cuda:1"`` are checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but no CUDA GPU is available; use device='cpu'.")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` -> bfloat16 on GPUs that support it (else float16); on CPU bfloat16 where the processor
    has it natively, else float32 (:func:`~colorizer_lib.runtime.default_cpu_dtype`)."""
    if dtype is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return default_cpu_dtype() if device.type == "cpu" else torch.float32
    if isinstance(dtype, str):
        names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
                 "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
        if dtype.lower() not in names:
            raise ValueError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16.")
        dtype = names[dtype.lower()]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}.")
    return dtype


def check_render_factor(render_factor: Any) -> int:
    """Return ``render_factor`` as an int, or raise :class:`RenderFactorError` naming the range."""
    low, high = RENDER_FACTOR_RANGE
    if isinstance(render_factor, bool) or not isinstance(render_factor, (int, np.integer)) and not (
        isinstance(render_factor, float) and render_factor.is_integer()
    ):
        raise RenderFactorError(f"render factor must be a whole number from {low} to {high}, got {render_factor!r}.")
    rf = int(render_factor)
    if not low <= rf <= high:
        raise RenderFactorError(
            f"render factor {rf} is outside the allowed range {low}..{high} "
            f"(the model works on a square of 16 x render factor pixels; 35 is typical for photos, 21 for video)."
        )
    return rf


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def out_of_memory_guard(render_factor: int, batch_size: int) -> Iterator[None]:
    """Turn the device's out-of-memory errors into :class:`ColorizerOutOfMemoryError` with advice."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not (_is_oom(exc) or isinstance(exc, MemoryError)) or isinstance(exc, ColorizerOutOfMemoryError):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        hint = f"lower the render factor (now {render_factor})"
        if batch_size > 1:
            hint += f" or the batch size (now {batch_size})"
        raise ColorizerOutOfMemoryError(f"out of memory while colorizing: {hint}, or use a smaller model.") from exc


# --------------------------------------------------------------------------------------------------
# architecture identification for local files


@functools.lru_cache(maxsize=None)
def expected_state(arch: str, float_dtype: str = "float32") -> dict[str, dict[str, Any]]:
    """The (cached, read-only) state-dict manifest of ``arch`` (``{key: {"shape": [...], "dtype": "float32"}}``), built on
    the meta device so no memory or time is spent on weights. ``float_dtype`` is the storage type
    of floating tensors in the file (our own weights ship as float16)."""
    with torch.device("meta"):
        model = build_generator(arch)

    def dtype_name(t: torch.Tensor) -> str:
        return float_dtype if t.is_floating_point() else str(t.dtype).removeprefix("torch.")

    return {k: {"shape": list(v.shape), "dtype": dtype_name(v)} for k, v in model.state_dict().items()}


def identify_architecture(state_dict: dict[str, torch.Tensor], source: str, hint: str | None = None) -> str:
    """The registered architecture whose keys and shapes equal ``state_dict``'s.

    ``hint`` (e.g. the ``arch`` recorded in a safetensors file's metadata) is tried first.

    Raises:
        VerificationError: no architecture matches (names the closest one and what differs).
    """
    best: tuple[float, str] = (-1.0, "")
    candidates = available_architectures()
    if hint in candidates:
        candidates = [hint] + [a for a in candidates if a != hint]
    for arch in candidates:
        manifest = expected_state(arch)
        same = sum(1 for k, v in manifest.items() if k in state_dict and list(state_dict[k].shape) == v["shape"])
        if same == len(manifest) == len(state_dict):
            return arch
        score = same / max(len(manifest), len(state_dict))
        best = max(best, (score, arch))
    raise VerificationError(
        f"{source} does not hold the weights of any known model (closest: {best[1]}, "
        f"{best[0]:.0%} of its tensors match). Use DeOldify's ColorizeArtistic_gen.pth, ColorizeStable_gen.pth "
        f"or ColorizeVideo_gen.pth, or a model exported by `colorizer_lib.training`."
    )


def _safetensors_arch(path: Path) -> str | None:
    """The ``arch`` entry of a safetensors file's metadata (our exports write it), else None."""
    if path.suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch")
    except Exception:  # unreadable metadata: fall back to matching shapes; load errors surface elsewhere
        return None


# --------------------------------------------------------------------------------------------------
# results


def provenance_metadata(model_name: str, render_factor: int) -> dict[str, str]:
    """Metadata written into saved files: that the picture was colorized, by what and how (also what
    ``colorize image`` reads back to skip finished outputs)."""
    return {
        "Software": f"Colorizer {__version__}",
        "Description": f"Colorized by Colorizer {__version__} with model '{model_name}' "
                       f"at render factor {render_factor}",
        "colorizer:model": model_name,
        "colorizer:render_factor": str(render_factor),
    }


@dataclass
class ColorizeResult:
    """What :meth:`Colorizer.colorize` returns.

    Attributes:
        image: the colorized picture, the size of the input; RGB, or RGBA when the input had alpha.
        original: the input as loaded (EXIF orientation applied), for comparisons.
        render_factor: the render factor used.
        model_name: the model used.
        source: where the input came from (path, URL or a description), if known.
        watermarked: whether the palette mark was added.
    """

    image: Image.Image
    original: Image.Image
    render_factor: int
    model_name: str
    source: str | None = None
    watermarked: bool = False
    icc_profile: bytes | None = field(default=None, repr=False)
    exif: bytes | None = field(default=None, repr=False)

    @property
    def provenance(self) -> dict[str, str]:
        """Metadata written into saved files (:func:`provenance_metadata`)."""
        return provenance_metadata(self.model_name, self.render_factor)

    def save(self, path: str | Path, *, quality: int = 95, forbid: Iterable[str | Path] = ()) -> Path:
        """Write ``image`` to ``path`` (format from the extension) with provenance, the input's ICC
        profile and EXIF. The write is atomic; paths in ``forbid`` (e.g. the input) are refused."""
        from .image import save_image

        return save_image(self.image, path, provenance=self.provenance, icc_profile=self.icc_profile,
                          exif=self.exif, quality=quality, forbid=tuple(forbid))

    def compare(self, *, max_height: int | None = None) -> Image.Image:
        """Original and result side by side in one labelled RGB image."""
        from .image import side_by_side

        return side_by_side(self.original, self.image,
                            labels=("Original", f"{self.model_name}, render factor {self.render_factor}"),
                            max_height=max_height)


# --------------------------------------------------------------------------------------------------
# the colorizer


class Colorizer:
    """A colorization model ready for inference on one device.

    Build one with :meth:`from_pretrained` (registered name, alias or file path) or
    :meth:`from_model` (an ``nn.Module`` in the generators' convention). The model is folded for
    inference (spectral/weight norm into plain weights, conv+BN fused), moved to ``device`` in
    ``dtype``, and always run under ``torch.inference_mode``. ``pad`` zero-pads DeOldify's odd
    channel counts to multiples of 8 or 32 (:func:`~colorizer_lib.runtime.pad_channels`, the same
    function); the default pads on CUDA, where tensor cores want such counts, and not on CPU.
    Batches too large for some CUDA kernels' 32-bit indexing run in chunks
    (:func:`~colorizer_lib.runtime.call_in_chunks`).
    """

    def __init__(self, model: nn.Module, *, name: str, default_render_factor: int = 35, spec: WeightSpec | None = None,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None, fold: bool = True,
                 pad: bool | None = None):
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.name = name
        self.spec = spec
        self.default_render_factor = check_render_factor(default_render_factor)
        model = model.eval()
        if fold:
            model = fold_for_inference(model, inplace=True)
        if pad is None:  # measured on an H100: +9-12 % images/s at batch 8-32 (BENCHMARKS.md)
            pad = fold and self.device.type == "cuda"
        if pad:
            model = pad_channels(model)
        self.channels_last = prefers_channels_last(self.device, self.dtype)
        # One pass over the weights (type and layout together): part of the CLI's start-up.
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        model = model.to(device=self.device, dtype=self.dtype, memory_format=layout)
        if self.device.type == "cuda":
            # Input shapes are fixed per render factor, so cuDNN's one-off algorithm search pays.
            torch.backends.cudnn.benchmark = True
        self.model = model
        self._chunk_cache: dict = {}  # per input shape: the largest batch one forward may take (runtime.call_in_chunks)

    def use_onnx_runtime(self, cache_dir: str | Path | None = None) -> None:
        """Run the model with ONNX Runtime (CPU, float32): measured 1.2-2.3x faster than torch on a
        2-core CPU (BENCHMARKS.md). Each render factor is exported once, verified against torch, and
        cached under ``<cache_dir>/onnx/`` for later runs.

        Raises:
            ValueError: the colorizer is not on the CPU in float32.
            DependencyError: onnxruntime is not installed (``pip install "colorizer[onnx]"``).
        """
        import importlib.util

        from . import hub
        from .errors import DependencyError
        from .runtime import OnnxCpuModel

        if self.device.type != "cpu" or self.dtype != torch.float32:
            raise ValueError("the ONNX runtime is for CPU float32 colorizers; build one with device='cpu', "
                             "dtype='float32'.")
        if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
            raise DependencyError('ONNX Runtime is not installed: pip install "colorizer[onnx]"')
        if not isinstance(self.model, OnnxCpuModel):
            self.model = OnnxCpuModel(self.model, cache_dir=hub.cache_dir(cache_dir), name=self.name)

    def compile(self, mode: str | None = None) -> None:
        """Run the model through ``torch.compile`` from now on (:class:`~colorizer_lib.runtime.CompiledModel`).

        The first batch of each render factor compiles: on an H100, Artistic at render factor 35
        takes 40-115 s and then runs 2.3-2.5x faster than eager (183 against 76 images/s at batch 16);
        ``mode="max-autotune"`` also tunes the kernels, about 400 s for 200 images/s (BENCHMARKS.md).
        That pays off only for thousands of images (:func:`~colorizer_lib.runtime.should_compile`),
        so nothing compiles unless asked. Outputs equal the eager model's within bfloat16 rounding.

        Raises:
            ValueError: the model already runs through ONNX Runtime, or ``mode`` is unknown.
        """
        from .runtime import CompiledModel, OnnxCpuModel

        modes = {None: None, "default": None, "max-autotune": "max-autotune-no-cudagraphs"}
        if mode not in modes:
            raise ValueError(f"unknown compile mode {mode!r}; use 'default' or 'max-autotune'.")
        if isinstance(self.model, OnnxCpuModel):
            raise ValueError("this colorizer runs through ONNX Runtime, which does not compile; "
                             "use one or the other.")
        if not isinstance(self.model, CompiledModel):
            self.model = CompiledModel(self.model, mode=modes[mode])
            self._chunk_cache.clear()

    def __repr__(self) -> str:
        return f"Colorizer(name={self.name!r}, device={self.device}, dtype={self.dtype})"

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_model(cls, model: nn.Module, name: str = "custom", default_render_factor: int = 35, *,
                   device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                   fold: bool = True) -> "Colorizer":
        """Wrap an in-memory generator (normalised grey ``(B,3,S,S)`` -> normalised RGB in ``(-3, 3)``)."""
        return cls(model, name=name, default_render_factor=default_render_factor, device=device, dtype=dtype,
                   fold=fold)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, *, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None, cache_dir: str | Path | None = None,
                        progress: bool = True) -> "Colorizer":
        """Load a registered model (``"artistic"``, ``"stable"``, ``"video"``, ``"compact"``...) or a weights file.

        ``None`` picks the best available model (see :func:`default_model_name`). Weights are
        downloaded into the cache on first use and always verified before use.

        Raises:
            WeightsError: unknown name, download failure or a file that fails verification; the
                message names the file or URL and what to do.
        """
        from . import hub

        if name_or_path is None:
            name_or_path = default_model_name(cache_dir=cache_dir, progress=progress)
        spec, path = _resolve_source(name_or_path, cache_dir=cache_dir, progress=progress)
        source = str(path)
        if spec is not None:
            # Checksum (known, or recorded after the first verified load of a download), keys and shapes.
            state = hub.load_state_dict(path, expected_state(spec.arch, spec.dtype), sha256=spec.sha256,
                                        record_hash=spec.bundled is None)
            arch = spec.arch
        else:
            state = hub.load_state_dict(path)
            arch = identify_architecture(state, source, hint=_safetensors_arch(path))
        with torch.device("meta"):
            model = build_generator(arch)
        model.load_state_dict(state, strict=True, assign=True)
        if spec is not None:
            name, rf = spec.name, spec.default_render_factor
        else:
            match = next((s for s in list_specs() if s.arch == arch), None)
            name, rf = Path(source).stem, (match.default_render_factor if match else 35)
        return cls(model, name=name, default_render_factor=rf, spec=spec, device=device, dtype=dtype)

    # -- the two stages ----------------------------------------------------------------------------

    def render_factor_or_default(self, render_factor: int | None) -> int:
        return self.default_render_factor if render_factor is None else check_render_factor(render_factor)

    def model_input(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor:
        """``(B, 1, H, W)`` luma in [0, 1] -> the model's normalised ``(B, 3, S, S)`` input on the device."""
        rf = self.render_factor_or_default(render_factor)
        if luma.dim() != 4 or luma.shape[1] != 1:
            raise ValueError(f"luma must be shaped (B, 1, H, W), got {tuple(luma.shape)}")
        size = RENDER_BASE * rf
        x = luma.to(self.device, torch.float32, non_blocking=True)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return normalize_imagenet(grey_to_rgb(x.clamp(0.0, 1.0)))

    def chroma_from_input(self, x: torch.Tensor, render_factor: int) -> torch.Tensor:
        """Run the model on normalised inputs ``(B, 3, S, S)``; returns chroma ``(B, 2, S, S)`` float32."""
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        with out_of_memory_guard(render_factor, x.shape[0]), torch.inference_mode():
            out = call_in_chunks(self.model, x.to(self.dtype).contiguous(memory_format=memory_format), self._chunk_cache)
            rgb = denormalize_imagenet(out.float()).clamp_(0.0, 1.0)
            return rgb_to_chroma(rgb)

    def predict_chroma(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor:
        """Predict low-resolution chroma for a batch of grey images.

        Args:
            luma: ``(B, 1, H, W)`` float in [0, 1], any device.
            render_factor: model resolution is ``16 * render_factor``; ``None`` uses the model's default.

        Returns:
            ``(B, 2, S, S)`` float32 chroma (U, V) on this colorizer's device.
        """
        rf = self.render_factor_or_default(render_factor)
        with out_of_memory_guard(rf, luma.shape[0]):
            x = self.model_input(luma, rf)
        return self.chroma_from_input(x, rf)

    def compose(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Upsample ``chroma (B, 2, h, w)`` to ``luma (B, 1, H, W)``'s size and merge: RGB ``(B, 3, H, W)``
        in [0, 1] on the colorizer's device."""
        luma = luma.to(self.device, torch.float32)
        # Antialiasing matters only where the chroma shrinks (photos smaller than the model's input);
        # upsampling gives the same values either way (within float rounding), and the antialiased
        # kernel is much slower on a GPU (12 MP photos end to end on an H100: 32.9 against 40.2 photos/s).
        shrinks = any(out < src for out, src in zip(luma.shape[-2:], chroma.shape[-2:]))
        with torch.inference_mode():
            up = F.interpolate(chroma.to(self.device, torch.float32), size=luma.shape[-2:], mode="bilinear",
                               align_corners=False, antialias=shrinks)
            return compose_luma_chroma(luma, up)

    # -- images ------------------------------------------------------------------------------------

    def colorize(self, source: Any, render_factor: int | None = None, *, watermark: bool = False) -> ColorizeResult:
        """Colorize one picture.

        Args:
            source: a path, an http(s) URL, bytes, a PIL image or a numpy array (see
                :func:`colorizer_lib.image.load_image`).
            render_factor: ``None`` for the model's default (35 for photos models, 21 for video).
            watermark: add DeOldify's small palette mark in the bottom-left corner.

        Returns:
            a :class:`ColorizeResult`; the image has the input's size (RGBA if the input had alpha).
        """
        return self.colorize_batch([source], render_factor, watermark=watermark)[0]

    def colorize_batch(self, sources: Sequence[Any], render_factor: int | None = None, *, batch_size: int | None = None,
                       watermark: bool = False, progress: bool = False) -> list[ColorizeResult]:
        """Colorize many pictures, ``batch_size`` of them per forward pass (default: 8 on GPU, 1 on CPU)."""
        return list(self.iter_colorize(sources, render_factor, batch_size=batch_size, watermark=watermark,
                                       progress=progress))

    def iter_colorize(self, sources: Iterable[Any], render_factor: int | None = None, *, batch_size: int | None = None,
                      watermark: bool = False, progress: bool = False, total: int | None = None
                      ) -> Iterator[ColorizeResult]:
        """Like :meth:`colorize_batch`, yielding each result as soon as its batch is done.

        ``total`` sizes the progress bar when ``sources`` is an iterator of unknown length."""
        from .image import load_image

        rf = self.render_factor_or_default(render_factor)
        bs = batch_size or (8 if self.device.type == "cuda" else 1)
        if bs < 1:
            raise ValueError(f"batch size must be at least 1, got {bs}")
        if total is None:
            sources = list(sources)
            total = len(sources)
        bar = _progress_bar(total, progress, desc=f"colorizing ({self.name})")
        batch: list = []
        try:
            for source in sources:
                batch.append(load_image(source))
                if len(batch) == bs:
                    yield from self._colorize_loaded(batch, rf, watermark)
                    bar.update(len(batch))
                    batch = []
            if batch:
                yield from self._colorize_loaded(batch, rf, watermark)
                bar.update(len(batch))
        finally:
            bar.close()

    def _colorize_loaded(self, loaded: list, rf: int, watermark: bool) -> Iterator[ColorizeResult]:
        from .image import apply_watermark, to_luma_tensor

        with out_of_memory_guard(rf, len(loaded)):
            inputs = torch.cat([self.model_input(to_luma_tensor(item), rf) for item in loaded])
        chroma = self.chroma_from_input(inputs, rf)
        for item, item_chroma in zip(loaded, chroma):
            with out_of_memory_guard(rf, len(loaded)):
                rgb = self._compose_to_uint8(item, item_chroma[None])
            image = Image.fromarray(rgb, "RGB")
            if item.alpha is not None:
                image.putalpha(item.alpha)
            if watermark:
                image = apply_watermark(image)
            yield ColorizeResult(image=image, original=_original_for_display(item), render_factor=rf,
                                 model_name=self.name, source=item.source, watermarked=watermark,
                                 icc_profile=item.icc_profile, exif=item.exif)

    def _compose_to_uint8(self, item: Any, chroma: torch.Tensor) -> np.ndarray:
        """Merge ``chroma (1, 2, S, S)`` with the full-resolution luma of ``item``: ``(H, W, 3)`` uint8.

        Large pictures are merged in horizontal strips (separable bilinear upsampling), so only one
        strip of float data exists at a time.
        """
        width, height = item.rgb.size
        rgb8 = np.asarray(item.rgb)  # (H, W, 3) uint8 view, no copy
        luma16 = item.luma16
        s_h, s_w = chroma.shape[-2:]
        out = np.empty((height, width, 3), dtype=np.uint8)
        chroma = chroma.to(self.device, torch.float32)
        if height * width <= _STRIP_PIXELS or height < s_h or width < s_w:
            strips = [(0, height)]
            row_chroma = None
        else:
            strips = [(y, min(y + _STRIP_ROWS, height)) for y in range(0, height, _STRIP_ROWS)]
            # Horizontal pass once (S x W), then the vertical interpolation per strip.
            row_chroma = F.interpolate(chroma, size=(s_h, width), mode="bilinear", align_corners=False)
        with torch.inference_mode():
            for y0, y1 in strips:
                luma = self._strip_luma(rgb8, luma16, y0, y1)
                if row_chroma is None:
                    up = F.interpolate(chroma, size=(height, width), mode="bilinear", align_corners=False,
                                       antialias=True)
                else:
                    up = _vertical_bilinear(row_chroma, y0, y1, height)
                rgb = compose_luma_chroma(luma, up)
                out[y0:y1] = rgb[0].mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return out

    def _strip_luma(self, rgb8: np.ndarray, luma16: np.ndarray | None, y0: int, y1: int) -> torch.Tensor:
        if luma16 is not None:
            return torch.from_numpy(np.ascontiguousarray(luma16[y0:y1])).to(self.device, torch.float32)[None, None]
        strip = torch.from_numpy(np.array(rgb8[y0:y1])).to(self.device)  # copy: PIL arrays are read-only
        strip = strip.permute(2, 0, 1).float()
        luma = (0.299 * strip[0] + 0.587 * strip[1] + 0.114 * strip[2]).div_(255.0)
        return luma[None, None]


def _vertical_bilinear(rows: torch.Tensor, y0: int, y1: int, out_height: int) -> torch.Tensor:
    """Rows ``y0..y1`` of a bilinear (align_corners=False) vertical resize of ``rows (1, C, h, W)`` to
    ``out_height`` rows; equals slicing ``F.interpolate(rows, (out_height, W))`` without building it."""
    h = rows.shape[-2]
    scale = h / out_height
    y = torch.arange(y0, y1, device=rows.device, dtype=torch.float64)
    src = ((y + 0.5) * scale - 0.5).clamp_(min=0.0)
    lo = src.floor().long().clamp_(max=h - 1)
    hi = (lo + 1).clamp_(max=h - 1)
    w = (src - lo.double()).to(rows.dtype).reshape(1, 1, -1, 1)
    return rows[:, :, lo] * (1 - w) + rows[:, :, hi] * w


def _original_for_display(item: Any) -> Image.Image:
    if item.alpha is None:
        return item.rgb
    image = item.rgb.copy()
    image.putalpha(item.alpha)
    return image


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img")


# --------------------------------------------------------------------------------------------------
# choosing weights


def _resolve_source(name_or_path: str | Path, *, cache_dir, progress: bool) -> tuple[WeightSpec | None, Path]:
    """Map a registered name or a file path to ``(spec or None, local weights path)``."""
    from . import hub

    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or any(sep in text for sep in ("/", "\\")) or text.endswith(
        (".pth", ".pt", ".safetensors"))
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist. Check the path, or use a model name: "
                               f"{', '.join(s.name for s in list_specs())}.")
        return None, path
    spec = get_spec(text)
    if spec.bundled is not None:
        if not spec.bundled.is_file():
            raise WeightsError(f"the bundled weights of {spec.name!r} are missing at {spec.bundled}; reinstall Colorizer.")
        return spec, spec.bundled
    return spec, hub.resolve_weights(with_mirrors(spec), cache_dir=cache_dir, progress=progress)


MIRROR_ENV = "COLORIZER_MIRROR"


def with_mirrors(spec: WeightSpec) -> WeightSpec:
    """``spec`` with the base URLs listed in ``$COLORIZER_MIRROR`` (space separated) tried first.

    For air-gapped sites and classrooms: put the ``.pth`` files on any web server and point the
    variable at it; each mirror is asked for ``<base>/<spec.filename>``.
    """
    import dataclasses
    import os

    bases = os.environ.get(MIRROR_ENV, "").split()
    if not bases:
        return spec
    mirrors = tuple(f"{base.rstrip('/')}/{spec.filename}" for base in bases)
    return dataclasses.replace(spec, urls=mirrors + tuple(spec.urls))


def default_model_name(*, cache_dir=None, progress: bool = True, prefer: Sequence[str] = ("artistic", "stable")) -> str:
    """The model used when none is named: the first of ``prefer`` that is cached or can be downloaded,
    else the embedded ``compact`` model (saying so in one line on stderr)."""
    import sys

    from . import hub
    from .errors import DownloadError

    specs = [get_spec(n) for n in prefer]
    for spec in specs:
        if hub.is_cached(spec, cache_dir=cache_dir):
            return spec.name
    for spec in specs:
        try:
            hub.resolve_weights(with_mirrors(spec), cache_dir=cache_dir, progress=progress)
            return spec.name
        except DownloadError:
            continue
    fallback = next((s for s in list_specs() if s.bundled is not None), None)
    if fallback is None:
        raise WeightsError("no model could be downloaded and no embedded model is installed; "
                           "pass the path of a downloaded DeOldify .pth file.")
    print(f"colorizer: could not download {', '.join(prefer)} weights; using the embedded '{fallback.name}' model. "
          f"Download them later with `colorize models --download artistic` for richer colours.", file=sys.stderr)
    return fallback.name
