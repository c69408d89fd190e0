"""The Colorizer: a generator on a device, its model family around it, and ensembles of them.

Data path for one image (DESIGN.md):

    load -> luma at full resolution (kept) -> the family's model input at S x S, S = 16 * render_factor
    (DeOldify's: stretched, grey replicated to 3 channels, ImageNet normalisation; DDColor's: its Lab
    grey) -> model -> the family's chroma at model resolution -> the one merge (colorizer_lib.merge):
    upsampled to the original size and joined with the original luminance, in strips for large
    pictures -> RGB (alpha re-attached)

Everything after loading runs in torch on the model's device. Chroma is low-frequency and the eye
forgives it; luminance carries the detail, so the original's luminance survives untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from .accel import CompiledModel, call_in_chunks, pad_channels, prefers_channels_last
from .devices import (cudnn_benchmark, default_batch_size, out_of_memory_guard, resolve_device,  # noqa: F401  (public here too)
                      resolve_dtype)
from . import hub
from .constants import RENDER_BASE, RENDER_FACTOR_RANGE, __version__, check_render_factor  # noqa: F401  (public here too)
from .ensemble import average_chroma, ensemble_name, member_render_factors, normalise_weights, parse_models
from .errors import BatchError, InputError, ModelArgumentError, NonFiniteOutputError, RenderFactorError
from .export import OnnxCpuModel, require_onnx_extra
from .io import apply_watermark, is_url, load_image, save_image, side_by_side, to_luma_tensor
from .jobs import source_identity
from .merge import compose_tensor, merge
from .models import expected_state  # noqa: F401  (public here too)
from .models.families import ModelFamily, family_for_model
from .models.fold import fold_for_inference
from .registry import WeightSpec
from .loading import load_model, with_mirrors  # noqa: F401  (with_mirrors: public here too)

# --------------------------------------------------------------------------------------------------
# results


def provenance_metadata(model_name: str, render_factor: int, source: dict[str, str] | None = None) -> dict[str, str]:
    """Metadata written into saved files: that the picture was colorized, by what and how, and (when
    ``source`` is given, see :func:`colorizer_lib.jobs.source_identity`) from which input: what
    ``colorize image`` reads back to skip finished outputs."""
    return {
        "Software": f"Colorizer {__version__}",
        "Description": f"Colorized by Colorizer {__version__} with model '{model_name}' "
                       f"at render factor {render_factor}",
        "colorizer:model": model_name,
        "colorizer:render_factor": str(render_factor),
        **(source or {}),
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
        source_identity: what identifies the input (its size and SHA-256, or its URL) in the saved
            files' provenance; ``colorize image`` fills it (:func:`colorizer_lib.jobs.source_identity`).
    """

    image: Image.Image
    original: Image.Image
    render_factor: int
    model_name: str
    source: str | None = None
    watermarked: bool = False
    icc_profile: bytes | None = field(default=None, repr=False)
    exif: bytes | None = field(default=None, repr=False)
    source_identity: dict[str, str] | None = field(default=None, repr=False)

    @property
    def provenance(self) -> dict[str, str]:
        """Metadata written into saved files (:func:`provenance_metadata`)."""
        return provenance_metadata(self.model_name, self.render_factor, self.source_identity)

    def save(self, path: str | Path, *, quality: int = 95, forbid: Iterable[str | Path] = ()) -> Path:
        """Write ``image`` to ``path`` (format from the extension) with provenance, the input's ICC
        profile and EXIF. The write is atomic; paths in ``forbid`` (e.g. the input) are refused."""
        return save_image(self.image, path, provenance=self.provenance, icc_profile=self.icc_profile,
                          exif=self.exif, quality=quality, forbid=tuple(forbid))

    def compare(self, *, max_height: int | None = None) -> Image.Image:
        """Original and result side by side in one labelled RGB image."""
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
    channel counts to multiples of 8 or 32 (:func:`~colorizer_lib.accel.pad_channels`, the same
    function); the default pads on CUDA, where tensor cores want such counts, and not on CPU.
    Batches too large for some CUDA kernels' 32-bit indexing run in chunks
    (:func:`~colorizer_lib.accel.call_in_chunks`).
    """

    def __init__(self, model: nn.Module, *, name: str, default_render_factor: int | None = None,
                 spec: WeightSpec | None = None,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None, fold: bool = True,
                 pad: bool | None = None, family: ModelFamily | None = None):
        self.family = family if family is not None else family_for_model(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.name = name
        self.spec = spec
        self.weights_source: str | None = None  # the weights file, named in errors (from_pretrained sets it)
        rf = self.family.default_render_factor if default_render_factor is None else default_render_factor
        self.default_render_factor = check_render_factor(rf)
        self.family.input_size(self.default_render_factor)  # DDColor's must be even: said now, not at first use
        model = model.eval()
        if fold:
            model = fold_for_inference(model, inplace=True)
        if pad is None:  # a gain on GPUs (BENCHMARKS.md), none on CPUs
            pad = fold and self.device.type == "cuda"
        if pad:
            model = pad_channels(model)
        self.channels_last = prefers_channels_last(self.device, self.dtype)
        # One pass over the weights (type and layout together): part of the CLI's start-up.
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        model = model.to(device=self.device, dtype=self.dtype, memory_format=layout)
        self.model = model
        self._chunk_cache: dict = {}  # per input shape: the largest batch one forward may take (accel.call_in_chunks)

    def use_onnx_runtime(self, cache_dir: str | Path | None = None, *, progress: bool = True) -> None:
        """Run the model with ONNX Runtime (CPU, float32), the faster CPU runtime (numbers in
        BENCHMARKS.md). Each render factor is exported once, verified against torch, and cached under
        ``<cache_dir>/onnx/`` for later runs (:class:`~colorizer_lib.export.OnnxCpuModel`: a shared,
        checked cache; torch with one warning when it cannot be written). ``progress=False`` silences
        the notice shown while another process exports the same file.

        Raises:
            ValueError: the colorizer is not on the CPU in float32.
            DependencyError: onnxruntime is not installed (``pip install "colorizer[onnx]"``).
        """

        if self.device.type != "cpu" or self.dtype != torch.float32:
            raise ValueError("the ONNX runtime is for CPU float32 colorizers; build one with device='cpu', "
                             "dtype='float32'.")
        require_onnx_extra("onnx", "onnxruntime")
        if not isinstance(self.model, OnnxCpuModel):
            # not created here: a cache that cannot be written makes the model run with torch (one warning)
            self.model = OnnxCpuModel(self.model, cache_dir=hub.cache_path(cache_dir), name=self.name,
                                      progress=progress)

    def compile(self, mode: str | None = None) -> None:
        """Run the model through ``torch.compile`` from now on (:class:`~colorizer_lib.accel.CompiledModel`).

        The first batch of each render factor compiles (about a minute or two on a GPU), then runs
        faster than eager; ``mode="max-autotune"`` also tunes the kernels, which takes several times
        longer for a little more speed (measurements in BENCHMARKS.md and docs/PERF_NOTES.md).
        That pays off only for thousands of images (:func:`~colorizer_lib.accel.should_compile`),
        so nothing compiles unless asked. Outputs equal the eager model's within bfloat16 rounding.

        Raises:
            ValueError: the model already runs through ONNX Runtime, or ``mode`` is unknown.
        """
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
    def from_model(cls, model: nn.Module, name: str = "custom", default_render_factor: int | None = None, *,
                   device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                   fold: bool = True, family: ModelFamily | None = None) -> "Colorizer":
        """Wrap an in-memory generator: DeOldify's convention (normalised grey ``(B,3,S,S)`` -> normalised RGB
        in ``(-3, 3)``) or a DDColor model; ``family`` defaults to the model's (:func:`family_for_model`)."""
        return cls(model, name=name, default_render_factor=default_render_factor, device=device, dtype=dtype,
                   fold=fold, family=family)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | Sequence[Any] | None = None, *, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None, cache_dir: str | Path | None = None,
                        progress: bool = True, prefer: Sequence[str] | None = None,
                        chroma_upsample: str | None = None) -> "Colorizer":
        """Load a registered model (``"artistic"``, ``"stable"``, ``"video"``, ``"compact"``...), a weights file, or
        an ensemble of them (``["ddcolor", "artistic"]``, ``"ddcolor+artistic"``, ``"ddcolor:0.6,artistic:0.4"``:
        an :class:`Ensemble`).

        The model's family (DeOldify's or DDColor's, :mod:`colorizer_lib.models.families`) follows from its
        architecture. ``chroma_upsample``: ``"bilinear"`` (the default) or ``"nearest"`` (DDColor's
        original, for exact comparisons with it).

        ``None`` picks the best available model: the first of ``prefer`` (default: a cached DDColor-L,
        else DeOldify Artistic, then Stable; :func:`colorizer_lib.registry.default_model_order`) that is
        cached or can be downloaded, else the embedded one (:func:`colorizer_lib.loading.load_default`). Weights are
        downloaded into the cache on first use and always verified before use.

        Raises:
            WeightsError: unknown name, download failure or a file that fails verification; the
                message names the file or URL and what to do. A weights path given that is no
                model Colorizer can run (another architecture's weights, text, a plain pickle) is a
                :class:`NotWeightsError`, also an ``InputError`` (bad usage).
        """
        resolve_dtype(dtype, resolve_device(device))  # a bad device or dtype is said before any download
        members = parse_models(name_or_path)
        if members is not None and len(members) == 1:
            name_or_path, members = members[0][0], None
        if members is not None:
            return Ensemble([Colorizer.from_pretrained(source, device=device, dtype=dtype, cache_dir=cache_dir,
                                                       progress=progress, chroma_upsample=chroma_upsample)
                             for source, _ in members],
                            None if members[0][1] is None else [weight for _, weight in members])
        loaded = load_model(name_or_path, cache_dir=cache_dir, progress=progress, prefer=prefer)
        colorizer = cls(loaded.model, name=loaded.name, default_render_factor=loaded.default_render_factor,
                        spec=loaded.spec, device=device, dtype=dtype,
                        family=family_for_model(loaded.model, chroma_upsample))
        colorizer.weights_source = loaded.source
        return colorizer

    # -- the two stages ----------------------------------------------------------------------------

    def fit_render_factors(self, factors: Iterable[int]) -> tuple[list[int], str]:
        """The render factors this model takes for a sweep or preview of ``factors``: each one it refuses (an
        odd one for DDColor) moved to the next it takes (up; down at the top of the range), repeats dropped,
        and a note saying what moved (``""`` when nothing did), for the front end to show beside the grid.

        Raises:
            RenderFactorError: a value outside the range (nothing near it is taken either)."""
        fitted: list[int] = []
        moved: list[str] = []
        for wanted in factors:
            for candidate in (wanted, wanted + 1, wanted - 1):
                try:
                    self.render_factor_or_default(candidate)
                except RenderFactorError:
                    if candidate == wanted - 1:
                        raise
                    continue
                break
            if candidate != wanted:
                moved.append(f"{wanted} -> {candidate}")
            if candidate not in fitted:
                fitted.append(candidate)
        note = (f" {self.name} takes only some render factors (DDColor: even ones), so {', '.join(moved)}."
                if moved else "")
        return fitted, note

    def render_factor_or_default(self, render_factor: int | None) -> int:
        """``render_factor`` checked for this model (its range, and what its family needs: DDColor an even
        one), or the model's default when ``None``."""
        if render_factor is None:
            return self.default_render_factor
        rf = check_render_factor(render_factor)
        self.family.input_size(rf)  # raises RenderFactorError naming the nearest usable values
        return rf

    def model_input(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor:
        """``(B, 1, H, W)`` luma in [0, 1] -> the model's normalised ``(B, 3, S, S)`` input on the device."""
        rf = self.render_factor_or_default(render_factor)
        if luma.dim() != 4 or luma.shape[1] != 1:
            raise ValueError(f"luma must be shaped (B, 1, H, W), got {tuple(luma.shape)}")
        size = self.family.input_size(rf)
        return self.family.model_input(luma.to(self.device, torch.float32, non_blocking=True), size)

    def chroma_from_input(self, x: torch.Tensor, render_factor: int) -> torch.Tensor:
        """Run the model on inputs from :meth:`model_input` ``(B, 3, S, S)``; returns chroma ``(B, 2, S, S)``
        float32 in the family's colour space (``self.family.chroma_space``)."""
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        with out_of_memory_guard(render_factor, x.shape[0]), torch.inference_mode(), \
                cudnn_benchmark(self.device.type == "cuda"):
            out = call_in_chunks(self.model, x.to(self.dtype).contiguous(memory_format=memory_format), self._chunk_cache)
            out = out.float()
            self._check_finite(out)
            return self.family.chroma(out)

    def _check_finite(self, out: torch.Tensor) -> None:
        """Raise :class:`NonFiniteOutputError` naming the weights when an image's model output holds NaN
        or infinity (broken weights, or an overflow in float16), which would come out black. One
        reduction per image (NaN and infinity propagate into a sum; finite outputs are bounded far below
        float32's range) and one small copy to the host."""
        finite = torch.isfinite(out.sum(dim=tuple(range(1, out.dim()))))
        if bool(finite.all()):
            return
        bad = tuple(int(i) for i in (~finite).nonzero().flatten().tolist())
        weights = f"'{self.name}' ({self.weights_source})" if self.weights_source else f"'{self.name}'"
        raise NonFiniteOutputError(
            f"the model {weights} produced NaN or infinite values for {len(bad)} of {len(finite)} image(s) in "
            f"this batch, which would come out black: its weights are broken (delete or re-download them, or "
            f"pass other weights)" + (" or it overflows in float16 (try --dtype float32)" if self.dtype ==
                                      torch.float16 else "") + ".", bad)

    def predict_chroma(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor:
        """Predict low-resolution chroma for a batch of grey images.

        Args:
            luma: ``(B, 1, H, W)`` float in [0, 1], any device.
            render_factor: model resolution is ``16 * render_factor``; ``None`` uses the model's default.

        Returns:
            ``(B, 2, S, S)`` float32 chroma in the family's colour space (U, V for DeOldify's, Lab a, b for
            DDColor's) on this colorizer's device.
        """
        rf = self.render_factor_or_default(render_factor)
        with out_of_memory_guard(rf, luma.shape[0]):
            x = self.model_input(luma, rf)
        return self.chroma_from_input(x, rf)

    def compose(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Upsample ``chroma (B, 2, h, w)`` to ``luma (B, 1, H, W)``'s size and merge: RGB ``(B, 3, H, W)``
        in [0, 1] on the colorizer's device. The one merge (:func:`colorizer_lib.merge.merge`: strips
        above 4 MP, antialiasing only where the chroma shrinks) in the family's colour space."""
        with torch.inference_mode():
            return compose_tensor(self.family, luma.to(self.device, torch.float32),
                                  chroma.to(self.device, torch.float32))

    # -- images ------------------------------------------------------------------------------------

    def colorize(self, source: Any, render_factor: int | None = None, *, watermark: bool = False) -> ColorizeResult:
        """Colorize one picture.

        Args:
            source: a path, an http(s) URL, bytes, a PIL image or a numpy array (see
                :func:`colorizer_lib.io.load_image`).
            render_factor: ``None`` for the model's default (its record's, shown by ``colorize models``).
            watermark: add DeOldify's small palette mark in the bottom-left corner.

        Returns:
            a :class:`ColorizeResult`; the image has the input's size (RGBA if the input had alpha).
        """
        result = self.colorize_batch([source], render_factor, watermark=watermark, errors="return")[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def colorize_batch(self, sources: Sequence[Any], render_factor: int | None = None, *, batch_size: int | None = None,
                       watermark: bool = False, progress: bool = False, errors: str = "raise"
                       ) -> list[ColorizeResult] | list[ColorizeResult | InputError]:
        """Colorize many pictures, ``batch_size`` of them per forward pass (default: 8 on GPU, 1 on CPU).

        A picture that cannot be loaded (a missing file, an unreachable URL, a corrupt image: an
        :class:`~colorizer_lib.errors.InputError`) does not stop the others: every item is tried.

        Args:
            errors: ``"raise"`` (the default): return ``list[ColorizeResult]`` when every picture was
                colorized, else raise :class:`~colorizer_lib.errors.BatchError` (an ``InputError``)
                naming each failed item, whose ``results`` still hold the good ones.
                ``"return"``: return one entry per source, in order: the ``ColorizeResult``, or the
                ``InputError`` that says why that picture failed (``isinstance(r, Exception)``).

        Out of memory and other errors that are not about one picture propagate at once.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        sources = list(sources)
        results: list[ColorizeResult | InputError] = list(
            self._iter_colorize(sources, render_factor, batch_size=batch_size, watermark=watermark,
                                progress=progress, total=len(sources), keep_going=True))
        failed = [(i, r) for i, r in enumerate(results) if isinstance(r, InputError)]
        if failed and errors == "raise":
            lines = "\n".join(f"  item {i} ({_describe(sources[i])}): {r}" for i, r in failed)
            raise BatchError(f"{len(failed)} of {len(sources)} picture(s) could not be colorized "
                             f"(the others were; see .results, or pass errors='return'):\n{lines}", results)
        return results

    def iter_colorize(self, sources: Iterable[Any], render_factor: int | None = None, *, batch_size: int | None = None,
                      watermark: bool = False, progress: bool = False, total: int | None = None
                      ) -> Iterator[ColorizeResult]:
        """Like :meth:`colorize_batch`, yielding each result as soon as its batch is done.

        ``total`` sizes the progress bar when ``sources`` is an iterator of unknown length. The first
        picture that cannot be loaded raises its :class:`~colorizer_lib.errors.InputError` (the results
        before it were already yielded)."""
        yield from self._iter_colorize(sources, render_factor, batch_size=batch_size, watermark=watermark,
                                       progress=progress, total=total, keep_going=False)

    def _iter_colorize(self, sources: Iterable[Any], render_factor: int | None, *, batch_size: int | None,
                       watermark: bool, progress: bool, total: int | None, keep_going: bool
                       ) -> Iterator[ColorizeResult | InputError]:
        """:meth:`iter_colorize`; with ``keep_going``, a picture that cannot be loaded yields its
        ``InputError`` in its place and the others go on."""
        rf = self.render_factor_or_default(render_factor)
        bs = batch_size or default_batch_size(self.device)
        if bs < 1:
            raise ValueError(f"batch size must be at least 1, got {bs}")
        if total is None:
            sources = list(sources)
            total = len(sources)
        bar = progress_bar(total, progress, desc=f"colorizing ({self.name})")
        batch: list = []

        def flush() -> Iterator[ColorizeResult | InputError]:
            loaded = [item for item in batch if not isinstance(item, InputError)]
            results = iter(self._colorize_loaded(loaded, rf, watermark) if loaded else ())
            for item in batch:
                yield item if isinstance(item, InputError) else next(results)
            bar.update(len(batch))

        try:
            for source in sources:
                try:
                    batch.append(_load_identified(source))
                except InputError as exc:
                    if not keep_going:
                        raise
                    batch.append(exc)
                if sum(not isinstance(item, InputError) for item in batch) == bs:
                    yield from flush()
                    batch = []
            if batch:
                yield from flush()
        finally:
            bar.close()

    def _colorize_loaded(self, loaded: list, rf: int, watermark: bool) -> Iterator[ColorizeResult]:
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
            yield ColorizeResult(image=image, original=original_for_display(item), render_factor=rf,
                                 model_name=self.name, source=item.source, watermarked=watermark,
                                 icc_profile=item.icc_profile, exif=item.exif, source_identity=item.source_identity)

    def _compose_to_uint8(self, item: Any, chroma: torch.Tensor) -> np.ndarray:
        """Merge ``chroma (1, 2, S, S)`` with the full-resolution luminance of a loaded picture ``item`` (read
        from its 8-bit RGB, or its full-precision luma when it has one) through the one merge:
        ``(H, W, 3)`` uint8. Only one strip of float data exists at a time for large pictures."""
        width, height = item.rgb.size
        rgb8 = np.asarray(item.rgb)  # (H, W, 3) uint8 view, no copy
        luma16 = item.luma16
        out = np.empty((height, width, 3), dtype=np.uint8)

        def luminance(y0: int, y1: int) -> torch.Tensor:
            if luma16 is not None:
                luma = torch.from_numpy(np.ascontiguousarray(luma16[y0:y1])).to(self.device, torch.float32)
                return self.family.luminance(luma[None, None])
            strip = torch.from_numpy(np.array(rgb8[y0:y1])).to(self.device)  # copy: PIL arrays are read-only
            return self.family.luminance_from_rgb8(strip)

        def write(y0: int, y1: int, rgb: torch.Tensor) -> None:
            out[y0:y1] = rgb[0].mul_(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

        with torch.inference_mode():
            merge(self.family, chroma.to(self.device, torch.float32), (height, width), luminance, write)
        return out


class Ensemble(Colorizer):
    """Several models as one Colorizer: each predicts chroma at its own input size, the chroma is averaged
    (weighted) in the first model's colour space and composed with the full-resolution luminance once,
    through the one merge. Built by :meth:`Colorizer.from_pretrained` from ``["a", "b"]``, ``"a+b"`` or
    ``"a:0.6,b:0.4"``, or directly from Colorizers on one device.

    Batched: one pass of each model over the batch. ``model_input`` packs every member's input into one
    ``(B, N)`` tensor (each flattened), which only :meth:`chroma_from_input` reads. The ensemble's
    default render factor is the first model's, and at that value every model runs at its own default;
    another value scales each model's own default alike (:func:`colorizer_lib.ensemble.member_render_factors`).
    Colour space, conversions and sizes: :mod:`colorizer_lib.ensemble`.
    """

    def __init__(self, members: Sequence[Colorizer], weights: Sequence[float] | None = None):
        members = list(members)
        if len(members) < 2:
            raise ModelArgumentError(f"an ensemble needs two or more models, got {len(members)}.")
        if len({m.device for m in members}) > 1:
            raise InputError(f"an ensemble's models must share one device, got {', '.join(str(m.device) for m in members)}; "
                             f"build them with the same device=.")
        self.members = members
        self.weights = normalise_weights(weights, len(members))
        lead = members[0]
        self.family, self.device, self.dtype, self.channels_last = lead.family, lead.device, lead.dtype, lead.channels_last
        self.name = ensemble_name([m.name for m in members], self.weights)
        self.spec, self.weights_source, self._chunk_cache = None, None, {}
        self.default_render_factor = lead.default_render_factor

    @property
    def model(self) -> nn.ModuleList:
        """The members' models (to inspect them; each member runs its own)."""
        return nn.ModuleList([m.model for m in self.members if isinstance(m.model, nn.Module)])

    def use_onnx_runtime(self, cache_dir: str | Path | None = None, *, progress: bool = True) -> None:
        for member in self.members:
            member.use_onnx_runtime(cache_dir, progress=progress)

    def compile(self, mode: str | None = None) -> None:
        for member in self.members:
            member.compile(mode)

    def render_factor_or_default(self, render_factor: int | None) -> int:
        """Only the range is checked here: each member's own value (DDColor's kept even) is derived from it."""
        return self.default_render_factor if render_factor is None else check_render_factor(render_factor)

    def _member_rfs(self, render_factor: int | None) -> list[int]:
        rf = self.render_factor_or_default(render_factor)
        return member_render_factors(rf, [m.default_render_factor for m in self.members],
                                     [m.family for m in self.members])

    def model_input(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor:
        return torch.cat([m.model_input(luma, rf).flatten(1)
                          for m, rf in zip(self.members, self._member_rfs(render_factor))], dim=1)

    def chroma_from_input(self, x: torch.Tensor, render_factor: int) -> torch.Tensor:
        parts, start = [], 0
        for member, rf in zip(self.members, self._member_rfs(render_factor)):
            size = member.family.input_size(rf)
            xi = x[:, start:start + 3 * size * size].reshape(x.shape[0], 3, size, size)
            start += 3 * size * size
            parts.append((member.family, member.family.input_luma(xi), member.chroma_from_input(xi, rf)))
        if start != x.shape[1]:
            raise ValueError(f"ensemble input of {x.shape[1]} values per image, expected {start}: "
                             f"build it with this ensemble's model_input at the same render factor.")
        with torch.inference_mode():
            return average_chroma(self.family, parts, self.weights)


def _load_identified(source: Any):
    """``load_image(source)``; for a file path or URL, with what identifies it in saved files'
    provenance (:func:`colorizer_lib.jobs.source_identity`), so that ``colorize image`` can later
    tell which input a saved result was made from."""
    loaded = load_image(source)
    if isinstance(source, (str, os.PathLike)) and loaded.source_identity is None:
        text = str(source)
        loaded.source_identity = source_identity(text if is_url(text) else str(Path(text).expanduser()))
    return loaded


def _describe(source: Any) -> str:
    """A short name for a source in messages."""
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__}>"


def original_for_display(item: Any) -> Image.Image:
    """The loaded picture as a comparison shows it: RGB, or RGBA when the input had alpha."""
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


def progress_bar(total: int | None, enabled: bool = True, desc: str = "colorize", unit: str = "img"):
    """The terminal's progress bar (tqdm) for ``total`` pictures, ``update(n)`` and ``close()``; a silent
    stand-in when not ``enabled`` (tqdm is not even imported then). ``Colorizer.colorize_batch`` and
    ``colorize image`` both draw theirs with it."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)
