"""The pipelined path of the photo pipeline: :func:`colorize_jobs_pipelined` runs planned
:class:`~colorizer_lib.jobs.FileJob` s with reading and writing overlapped with the model (worker
threads; nvJPEG on a GPU), writing what the simple path writes. :mod:`colorizer_lib.photos.run`
chooses between the two paths (:func:`~colorizer_lib.photos.run.use_pipeline`); both share
:class:`NonFiniteTriage`.

The model wrappers it runs (channel padding, chunks, ``torch.compile``) live in
:mod:`colorizer_lib.accel`, the ONNX Runtime ones in :mod:`colorizer_lib.export`.

Nothing here needs torchvision or fastai: the pipeline uses torchvision's nvJPEG codecs when it
is installed and falls back to PIL otherwise.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import torch

from ..colorizer import ColorizeResult, original_for_display, out_of_memory_guard, provenance_metadata
from ..errors import DependencyError, InputError, NonFiniteOutputError
from ..io import (OUTPUT_FORMATS, apply_watermark, carried_metadata, has_colour, load_image, open_header,
                  save_jpeg_bytes, to_luma_tensor)
from ..jobs import FileJob
from .plan import resolved_paths

if TYPE_CHECKING:
    from PIL import Image

# --------------------------------------------------------------------------------------------------
# non-finite model output: one picture's problem, or the weights'


class NonFiniteTriage:
    """Decides, for a job of ``total`` pictures, whether a :class:`NonFiniteOutputError` is the fault
    of the pictures it names (an overflow on particular content, as float16 can) or of the weights.

    The weights are to blame, and the job stops at once with the error (which names them), when
    they hold NaN or infinity themselves, or when no picture of the job has come out finite yet and
    every picture tried so far did not, and that is the whole first batch and at least two pictures
    (or the job's only one). Otherwise only the named pictures fail and the others go on.
    ``colorize image`` uses it on both its paths."""

    def __init__(self, colorizer, total: int):
        self.colorizer = colorizer
        self.total = total
        self.finite_seen = False
        self.non_finite = 0

    def passed(self, count: int) -> None:
        """``count`` pictures came out finite."""
        self.finite_seen = self.finite_seen or count > 0

    def failing(self, error: NonFiniteOutputError, batch_len: int) -> tuple[int, ...]:
        """The positions in the batch (of ``batch_len`` pictures) that fail alone; raises ``error``
        when it is the weights' fault."""
        if not error.indices or not weights_are_finite(self.colorizer.model):
            raise error
        self.non_finite += len(error.indices)
        if not self.finite_seen and len(error.indices) == batch_len and self.non_finite >= min(self.total, 2):
            raise error
        return error.indices

    def message(self) -> str:
        hint = " (or try --dtype float32)" if self.colorizer.dtype == torch.float16 else ""
        return (f"the model '{self.colorizer.name}' produced NaN or infinite values for this picture, which would "
                f"come out black, so nothing was written; its weights are finite and other pictures came out "
                f"fine: try another render factor{hint}.")


def weights_are_finite(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer of ``model`` is finite (one pass, run only
    after the model produced a non-finite output)."""
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


@dataclass
class PipelineStats:
    """What a pipelined run did: counts and times (seconds).

    ``gpu`` is the time the device spent on the batches (CUDA events, so queued work that overlaps
    the host is counted once); on CPU it is the wall time of the model-and-merge stage.
    ``encoder`` and ``decoder`` say which JPEG codecs ran: ``"pil"`` or ``"torchvision"``.
    ``outputs`` are the files written, in input order; ``failures`` the ``(source, message)`` of
    each picture that could not be read or written.
    """

    images: int = 0
    wall: float = 0.0
    gpu: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    encoder: str = "pil"
    decoder: str = "pil"
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.wall if self.wall else float("nan")


def colorize_jobs_pipelined(colorizer, jobs: Sequence[FileJob], *, render_factor: int | None = None,
                            batch_size: int = 8, workers: int | None = None, quality: int = 95,
                            max_batches_in_flight: int = 3, encoder: str = "auto", decoder: str = "auto",
                            watermark: bool = False, forbid: Iterable[str | os.PathLike] = (),
                            on_done: Callable[[FileJob, Path | None, str | None], None] | None = None,
                            on_colour: Callable[[FileJob], None] | None = None) -> PipelineStats:
    """Colorize ``jobs`` writing what :meth:`Colorizer.colorize
    <colorizer_lib.colorizer.Colorizer.colorize>` and :meth:`FileJob.save` write, with reading and
    writing overlapped with the model: the photo pipeline's fast path on a GPU.

    Three stages overlap. Worker threads decode ahead of the model (PIL releases the GIL while
    decoding and encoding) and, on CUDA, copy each luma into page-locked memory. The calling thread
    only *queues* device work: upload, model and full-resolution merge (``Colorizer.compose``) and
    the download into page-locked buffers, then goes on to the next batch without waiting for the
    device. Worker threads wait for each batch's CUDA event and encode. At most
    ``max_batches_in_flight`` batches are queued or being encoded, so host and device memory stay
    bounded for any number of files.

    * Inputs are read by :func:`~colorizer_lib.io.load_image` in the worker threads (any
      format, URLs, EXIF orientation, alpha, 16-bit luma, CMYK, ICC profile and EXIF), and the model
      gets the same luma as in ``Colorizer.colorize``. With the device decoder, complete baseline
      JPEG files are decoded on the device instead (not for comparisons, which need the original
      picture); their ICC profile and EXIF come from the headers
      (:func:`~colorizer_lib.io.carried_metadata`), with ``load_image``'s checks and pixel limit.
    * Results are written by :meth:`FileJob.save` (every output format, comparisons, alpha
      re-attached, ``watermark``), or, with the device encoder, JPEG outputs with none of those
      are encoded on the device and written by :func:`~colorizer_lib.io.save_jpeg_bytes` with
      the same provenance, ICC profile and EXIF.
    * A picture that cannot be read or written (:class:`InputError`, or ``OSError``) is recorded in
      ``failures`` as ``(source, message)`` and the others go on; other errors (out of memory, a
      broken model) propagate once the work in progress has stopped.

    Pixels equal ``Colorizer.colorize``'s within 1/255 per channel: the merge is ``Colorizer.compose``
    on the luma the model saw, where the library merges a luma computed in another order (equal but
    for the last float bit), and in strips for photos over 4 megapixels. The device decoder
    (nvJPEG on CUDA) reads the stored luma plane: for greyscale and neutral RGB JPEGs the values
    PIL's decoding gives (measured on an H200, up to float rounding), for colour JPEGs up to about
    3/255 away from the luma of PIL's RGB; and nvJPEG encodes differently from libjpeg.

    Args:
        colorizer: the :class:`~colorizer_lib.colorizer.Colorizer`.
        jobs: what to colorize and where to write it (``colorize image`` plans them).
        watermark: add the palette mark, as ``Colorizer.colorize(..., watermark=True)``.
        forbid: paths never written (``colorize image`` passes its inputs).
        on_done: called as ``on_done(job, path, None)`` once a job is written, or ``on_done(job,
            None, message)`` once it has failed, from the thread that finished it, one call at a time.
        on_colour: called with each job whose input is already in colour
            (:func:`~colorizer_lib.io.has_colour`), from a worker thread, before it is colorized.
        render_factor, batch_size, quality: as for the simple path. ``workers``: decoding and
            encoding threads (default: one fewer than the CPUs, at least 2).
        max_batches_in_flight: batches queued on the device or being written at once.
        encoder: ``"pil"`` encodes on the CPU (libjpeg-turbo); ``"torchvision"`` encodes JPEG
            outputs with ``torchvision.io.encode_jpeg`` on the colorizer's device (nvJPEG on CUDA:
            only the small compressed files leave the GPU); ``"auto"``: torchvision on CUDA when
            installed. The encoder only ever applies to JPEG outputs.
        decoder: ``"pil"`` decodes every input with ``load_image`` in the worker threads;
            ``"torchvision"`` decodes complete baseline JPEGs on the device in one batch (nvJPEG on
            CUDA; EXIF orientation applied; others, and any the device rejects, on the CPU);
            ``"auto"``: torchvision on CUDA when installed. The CPU decoders hold Python's GIL for
            part of each 12 MP photo, which starves the thread that drives the GPU, so device
            decoding is what lets the pipeline keep up with the model.

    Returns:
        :class:`PipelineStats`, with ``outputs`` in job order and ``failures``.
    """
    from PIL import Image


    _check_pipeline_arguments(batch_size, max_batches_in_flight)
    rf = colorizer.render_factor_or_default(render_factor)
    cuda = colorizer.device.type == "cuda"
    stats = PipelineStats(encoder=_pick_codec("encoder", encoder, cuda), decoder=_pick_codec("decoder", decoder, cuda))
    protected = resolved_paths(forbid)
    provenance = provenance_metadata(colorizer.name, rf)

    def device_jpeg(job: FileJob, alpha) -> bool:
        """Whether the device encodes this job's output: a JPEG that PIL need not touch (no mark,
        no comparison; no alpha, which FileJob.save refuses to put in a JPEG, as the library does)."""
        return (stats.encoder == "torchvision" and OUTPUT_FORMATS.get(job.output.suffix.lower()) == "JPEG"
                and not watermark and job.compare is None and alpha is None)

    def colour_noted(job: FileJob, coloured: bool) -> None:
        if coloured and on_colour is not None:
            with colour_lock:
                on_colour(job)

    colour_lock = threading.Lock()

    def decode(job: FileJob, device_may_decode: bool) -> _Decoded:
        job.identity()  # hashed here, in the worker threads
        if device_may_decode and stats.decoder == "torchvision" and job.compare is None:
            jpeg = _read_plain_jpeg(job.source)
            if jpeg is not None:
                colour_noted(job, jpeg.has_colour)
                return _Decoded(jpeg, icc_profile=jpeg.icc_profile, exif=jpeg.exif, device_jpeg=device_jpeg(job, None))
        loaded = load_image(job.source)
        colour_noted(job, has_colour(loaded.rgb))
        return _Decoded(_staged(to_luma_tensor(loaded)[0, 0].numpy(), cuda), alpha=loaded.alpha,
                        original=original_for_display(loaded) if job.compare is not None else None,
                        icc_profile=loaded.icc_profile, exif=loaded.exif, device_jpeg=device_jpeg(job, loaded.alpha))

    def finish(job: FileJob, decoded: _Decoded, host: torch.Tensor) -> Path:
        metadata = {"icc_profile": decoded.icc_profile, "exif": decoded.exif}
        forbid = job.guarded(protected)
        if decoded.device_jpeg:
            path = save_jpeg_bytes(host.numpy().tobytes(), job.output, provenance={**provenance, **job.identity()},
                                   forbid=forbid, **metadata)
            job.remove_stale()
            return path
        image = Image.fromarray(host.numpy(), "RGB")
        if decoded.alpha is not None:
            image.putalpha(decoded.alpha)
        result = ColorizeResult(apply_watermark(image) if watermark else image, decoded.original, rf, colorizer.name,
                                source=job.source, watermarked=watermark, **metadata)
        return job.save(result, quality=quality, forbid=forbid)

    _run_pipeline(colorizer, list(jobs), decode, finish, stats, rf=rf, batch_size=batch_size, workers=workers,
                  max_batches_in_flight=max_batches_in_flight, jpeg_quality=quality,
                  on_done=on_done)
    return stats


def _check_pipeline_arguments(batch_size: int, max_batches_in_flight: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if max_batches_in_flight < 1:
        raise ValueError(f"max_batches_in_flight must be at least 1, got {max_batches_in_flight}")


# What fails one picture alone (recorded, the others go on): it cannot be read or written.
_PER_FILE = (InputError, OSError)


@dataclass
class _JpegFile:
    """A JPEG file's bytes (1-D uint8 tensor) and its EXIF orientation, for decoding on the device,
    with the ICC profile and EXIF that ``load_image`` would carry to the output."""

    data: torch.Tensor
    orientation: int
    icc_profile: bytes | None = None
    exif: bytes | None = None
    has_colour: bool = False


@dataclass
class _Decoded:
    """One input ready for the device stage, and what its output needs from the input."""

    luma: torch.Tensor | _JpegFile | None  # (H, W) uint8 or float32 host tensor, a JPEG; None once uploaded
    alpha: Image.Image | None = None
    original: Image.Image | None = None  # the input as loaded, for a comparison picture
    icc_profile: bytes | None = None
    exif: bytes | None = None
    device_jpeg: bool = False  # the result is encoded to JPEG on the device


def _run_pipeline(colorizer, jobs: Sequence[FileJob], decode: Callable[[FileJob, bool], _Decoded],
                  finish: Callable[[FileJob, _Decoded, torch.Tensor], Path], stats: PipelineStats, *, rf: int,
                  batch_size: int, workers: int | None, max_batches_in_flight: int, jpeg_quality: int,
                  on_done: Callable[[FileJob, Path | None, str | None], None] | None = None) -> None:
    """The three overlapping stages of :func:`colorize_jobs_pipelined`; fills ``stats``.

    ``decode(job, True)`` runs in the worker threads; ``decode(job, False)`` runs here for a file
    the device decoder rejected and must decode on the CPU. This thread queues the device work of
    each batch (:func:`_lumas_on_device`, :func:`_colorize_lumas`); ``finish(job, decoded, host)``
    runs in the worker threads once the batch's results are on the host, writes the output and
    returns its path. An exception of a type in ``_PER_FILE`` from ``decode`` or ``finish`` is recorded
    in ``stats.failures`` and its job skipped; any other propagates, queued work being cancelled.
    """

    workers = workers or max(2, (os.cpu_count() or 2) - 1)
    cuda = colorizer.device.type == "cuda"
    start = time.perf_counter()
    lock = threading.Lock()
    failures: dict[int, str] = {}
    triage = NonFiniteTriage(colorizer, len(jobs))

    def settle(index: int, error: BaseException | None = None, path: Path | None = None) -> None:
        with lock:
            if error is not None:
                failures[index] = str(error)
            if on_done is not None:
                on_done(jobs[index], path, None if error is None else str(error))

    def write(index: int, decoded: _Decoded, host: torch.Tensor, done) -> Path | None:
        try:
            if done is not None:
                done.synchronize()  # this batch's download has landed (releases the GIL while waiting)
            path = finish(jobs[index], decoded, host)
        except _PER_FILE as exc:
            settle(index, exc)
            return None
        settle(index, path=path)
        return path

    def upload(batch: list[tuple[int, _Decoded]]) -> list[tuple[int, _Decoded, torch.Tensor]]:
        """The batch's lumas on the device; a file that the device decoder rejects is decoded on
        the CPU here instead (rare: it holds up this thread)."""
        uploaded = []
        for (index, decoded), luma in zip(batch, _lumas_on_device([d.luma for _, d in batch], colorizer.device)):
            if luma is None:
                try:
                    decoded = decode(jobs[index], False)
                except _PER_FILE as exc:
                    settle(index, exc)
                    continue
                luma = _lumas_on_device([decoded.luma], colorizer.device)[0]
            decoded.luma = None  # the upload keeps what it needs
            uploaded.append((index, decoded, luma))
        return uploaded

    def colorize(ready: list[tuple[int, _Decoded, torch.Tensor]]):
        """The batch's results; with per-file failures, a picture whose output is not finite fails
        alone and the rest of the batch is run again (:class:`NonFiniteTriage`)."""
        while ready:
            try:
                host = _colorize_lumas(colorizer, [luma for _, _, luma in ready], rf, jpeg_quality,
                                       [d.device_jpeg for _, d, _ in ready])
            except NonFiniteOutputError as exc:
                bad = triage.failing(exc, len(ready))
                for position in bad:
                    settle(ready[position][0], InputError(triage.message()))
                ready = [item for position, item in enumerate(ready) if position not in bad]
                continue
            triage.passed(len(ready))
            return ready, host
        return [], []

    def written(futures: list[Future]) -> list[Path]:
        return [path for path in (future.result() for future in futures) if path is not None]

    device_spans = []  # (start, end) CUDA events per batch
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        decoding: dict[int, Future] = {}
        ahead = 2 * batch_size  # decoding runs at most two batches ahead
        in_flight: list[list[Future]] = []
        for first in range(0, len(jobs), batch_size):
            for i in range(first, min(first + batch_size + ahead, len(jobs))):
                if i not in decoding:
                    decoding[i] = pool.submit(decode, jobs[i], True)
            batch = []
            for i in range(first, min(first + batch_size, len(jobs))):
                try:
                    batch.append((i, decoding.pop(i).result()))
                except _PER_FILE as exc:
                    settle(i, exc)
            while len(in_flight) >= max_batches_in_flight:
                stats.outputs.extend(written(in_flight.pop(0)))
            if not batch:
                continue
            stage_start = time.perf_counter()
            if cuda:
                began = torch.cuda.Event(enable_timing=True)
                began.record()
            with torch.inference_mode(), out_of_memory_guard(rf, len(batch)):
                ready, host = colorize(upload(batch))
            done = None
            if cuda:
                done = torch.cuda.Event(enable_timing=True)
                done.record()
                device_spans.append((began, done))
            else:
                stats.gpu += time.perf_counter() - stage_start
            in_flight.append([pool.submit(write, i, d, rgb, done) for (i, d, _), rgb in zip(ready, host)])
        for futures in in_flight:
            stats.outputs.extend(written(futures))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if device_spans:
        stats.gpu = sum(a.elapsed_time(b) for a, b in device_spans) / 1e3
    stats.failures = [(jobs[i].source, failures[i]) for i in sorted(failures)]
    stats.images = len(stats.outputs)
    stats.wall = time.perf_counter() - start


_HOST_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}


def _staged(luma: np.ndarray, pin: bool) -> torch.Tensor:
    """An ``(H, W)`` uint8 or float32 luma copied into a host tensor, page-locked when ``pin`` (on
    CUDA) so that its upload is a true asynchronous copy."""
    staged = torch.empty(luma.shape, dtype=_HOST_DTYPES[luma.dtype], pin_memory=pin)
    staged.numpy()[...] = luma
    return staged


def _read_plain_jpeg(path) -> _JpegFile | None:
    """The file as a :class:`_JpegFile` when it is a complete baseline greyscale or YCbCr JPEG that
    nvJPEG decodes, within ``load_image``'s pixel limit; ``None`` for anything else, including what
    is no readable local file or ends early (the caller decodes those on the CPU, which says what is
    wrong with them)."""

    try:
        img = open_header(path)
    except InputError:
        return None
    with img:  # the headers only
        if img.format != "JPEG" or img.mode not in ("L", "RGB") or img.info.get("progressive") \
                or img.info.get("progression"):
            return None
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        icc_profile, exif = carried_metadata(img, str(path))
        data = Path(path).read_bytes()
        if not data.rstrip(b"\0").endswith(b"\xff\xd9"):  # truncated: PIL refuses it, nvJPEG may not
            return None
        try:
            coloured = has_colour(img)  # a small decode of the chroma (the device decodes luma only)
        except Exception:  # noqa: BLE001 - damaged data: the CPU decoder says what is wrong with it
            return None
    return _JpegFile(torch.frombuffer(bytearray(data), dtype=torch.uint8), orientation if 1 <= orientation <= 8 else 1,
                     icc_profile, exif, coloured)


def orient(grey: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (1-8) to an ``(H, W)`` tensor, exactly as PIL's ``exif_transpose``."""
    ops = {
        2: lambda t: t.flip(-1),
        3: lambda t: t.flip(-2, -1),
        4: lambda t: t.flip(-2),
        5: lambda t: t.transpose(-2, -1),
        6: lambda t: torch.rot90(t, -1, (-2, -1)),
        7: lambda t: t.flip(-2, -1).transpose(-2, -1),
        8: lambda t: torch.rot90(t, 1, (-2, -1)),
    }
    return ops[orientation](grey) if orientation in ops else grey


def _pick_codec(argument: str, choice: str, auto_uses_torchvision: bool) -> str:
    """``"pil"`` or ``"torchvision"`` for :func:`colorize_jobs_pipelined`'s ``encoder`` or
    ``decoder`` argument (named by ``argument``): ``"auto"`` means torchvision when
    ``auto_uses_torchvision`` and it is installed."""
    if choice not in ("auto", "pil", "torchvision"):
        raise InputError(f"{argument} must be 'auto', 'pil' or 'torchvision', got {choice!r}.")
    if choice == "pil" or (choice == "auto" and not auto_uses_torchvision):
        return "pil"
    try:
        import torchvision.io  # noqa: F401
    except ImportError as exc:
        if choice == "auto":
            return "pil"
        raise DependencyError(f"{argument}='torchvision' needs torchvision (`pip install torchvision`); "
                              f"or use {argument}='pil'.") from exc
    return "torchvision"


def _lumas_on_device(lumas: Sequence[torch.Tensor | _JpegFile], device: torch.device) -> list[torch.Tensor | None]:
    """Each luma as a ``(1, 1, H, W)`` float32 tensor in [0, 1] on ``device``: host tensors (``(H, W)``
    uint8, or float32 already in [0, 1]) are uploaded (asynchronously from page-locked memory), JPEG
    files decoded there in one batch (nvJPEG on CUDA; EXIF orientation applied); ``None`` for a file
    that the device decoder rejects."""
    on_device: list = [None] * len(lumas)
    jpegs = [i for i, t in enumerate(lumas) if isinstance(t, _JpegFile)]
    for i, grey in zip(jpegs, _decode_jpegs([lumas[i].data for i in jpegs], device)):
        if grey is not None:
            on_device[i] = orient(grey[0], lumas[i].orientation)
    for i, t in enumerate(lumas):
        if not isinstance(t, _JpegFile):
            on_device[i] = t.to(device, non_blocking=True)
    return [None if t is None else (t.float().div_(255.0) if t.dtype == torch.uint8 else t.float())[None, None]
            for t in on_device]


def _decode_jpegs(streams: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG streams decoded to ``(1, H, W)`` uint8 grey on ``device`` in one batch; ``None`` for a
    stream that the decoder rejects, which does not fail the others."""
    if not streams:
        return []
    from torchvision.io import ImageReadMode, decode_jpeg

    def run(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        return decode_jpeg(batch, mode=ImageReadMode.GRAY, device=device)

    try:
        return run(streams)
    except RuntimeError:  # one bad stream fails the whole batch: find it
        pass
    decoded = []
    for stream in streams:
        try:
            decoded.append(run([stream])[0])
        except RuntimeError:
            decoded.append(None)
    return decoded


def _colorize_lumas(colorizer, lumas: list[torch.Tensor], rf: int, jpeg_quality: int | None = None,
                    device_jpeg: Sequence[bool] | None = None) -> list[torch.Tensor]:
    """Queue the batched model and the library's full-resolution merge (``Colorizer.compose``) for
    ``(1, 1, H, W)`` float lumas on the colorizer's device (:func:`_lumas_on_device`). Returns ``(H, W, 3)`` uint8 RGB host tensors,
    filled asynchronously on CUDA (page-locked; valid once the stream reaches a later event) and
    ready at once on CPU; or, with ``jpeg_quality``, for the photos flagged in ``device_jpeg``
    (default: all), the photo's JPEG stream (1-D uint8, encoded on the device, ready)."""
    cuda = colorizer.device.type == "cuda"
    if device_jpeg is None or jpeg_quality is None:
        device_jpeg = [jpeg_quality is not None] * len(lumas)
    inputs = torch.cat([colorizer.model_input(t, rf) for t in lumas])
    chroma = colorizer.chroma_from_input(inputs, rf)
    results = []
    for luma, c, as_jpeg in zip(lumas, chroma, device_jpeg):
        rgb = colorizer.compose(luma, c[None])[0].mul_(255).round_().to(torch.uint8)
        if as_jpeg:
            results.append(rgb.contiguous())  # (3, H, W), as encode_jpeg wants
            continue
        rgb = rgb.permute(1, 2, 0).contiguous()
        if cuda:
            host = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(rgb, non_blocking=True)
        else:
            host = rgb
        results.append(host)
    to_encode = [i for i, as_jpeg in enumerate(device_jpeg) if as_jpeg]
    if to_encode:
        from torchvision.io import encode_jpeg

        for i, data in zip(to_encode, encode_jpeg([results[i] for i in to_encode], quality=jpeg_quality)):
            results[i] = data.cpu()
    return results
