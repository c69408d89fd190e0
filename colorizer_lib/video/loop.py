"""The threaded frame loop of a video job: decode -> colorize -> encode, overlapped.

A reader thread fills pinned uint8 luma batches from ffmpeg, the calling thread runs the model on the
Colorizer's device (:func:`colorize_frames`), a writer thread hands the results to the segment sink
(segments.py). A failure in any thread stops the others; an interruption or a model failure still
lets the writer record the frames already colorized, so a rerun resumes there.
"""

from __future__ import annotations

import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from ..colorizer import out_of_memory_guard
from ..errors import InputError, VideoError
from .convert import gray_u8_to_luma, pad_to_even, rgb_to_yuv420p
from .pipes import FrameReader, MissingFrameTime
from .segments import SegmentSink, Timeline, save_manifest
from .smoothing import ChromaSmoother


class ColorizerLike(Protocol):
    """The two Colorizer methods (docs/ARCHITECTURE.md) the video pipeline needs, plus its device."""

    device: torch.device
    default_render_factor: int

    def predict_chroma(self, luma: torch.Tensor, render_factor: int | None = None) -> torch.Tensor: ...

    def compose(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor: ...


@torch.inference_mode()
def colorize_frames(colorizer: ColorizerLike, frames: torch.Tensor, render_factor: int | None,
                    smoother: ChromaSmoother | None = None) -> torch.Tensor:
    """Colorize a batch of decoded frames: ``(B, H, W)`` uint8 luma -> ``(B, H'*W'*3/2)`` uint8 yuv420p.

    The same ``predict_chroma -> compose`` path as still images, with the chroma smoothed across
    frames in between; H' and W' are H and W rounded up to even (edge pixels replicated). Running out
    of memory anywhere in the batch raises :class:`~colorizer_lib.errors.ColorizerOutOfMemoryError`
    with the photos' advice (:func:`~colorizer_lib.colorizer.out_of_memory_guard`).
    """
    rf = render_factor if render_factor is not None else colorizer.default_render_factor
    with out_of_memory_guard(rf, frames.shape[0]):
        luma = gray_u8_to_luma(frames, colorizer.device)
        chroma = colorizer.predict_chroma(luma, render_factor)
        if smoother is not None:
            chroma = smoother(chroma, luma)
        rgb = colorizer.compose(luma, chroma)
        return rgb_to_yuv420p(pad_to_even(rgb.float()))


# ------------------------------------------------------------------------ queues shared by the threads

class _Stop(Exception):
    """Raised inside a worker thread when the main thread asked everybody to stop."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


@dataclass
class _Done:
    diagnostics: dict


@dataclass
class _Failed:
    error: BaseException


def _pool(count: int, shape: tuple[int, ...], pin: bool) -> queue.Queue:
    q: queue.Queue = queue.Queue()
    for _ in range(count):
        q.put(torch.empty(shape, dtype=torch.uint8, pin_memory=pin))
    return q


def run_frames(tools, info, colorizer, rf, smoother, batch, start, duration, manifest, wdir, size, time_base,
               b_frames, encode, frames_per_segment, skip, progress, cuda, output: Path | None = None) -> None:
    """Decode, colorize and encode every frame after the first ``skip``; record segments in ``manifest``."""
    from tqdm.auto import tqdm

    width, height = info.width, info.height
    frame_bytes = size[0] * size[1] * 3 // 2
    stop = threading.Event()  # everybody stops (the writer failed)
    stop_read = threading.Event()  # only the reader stops (the model failed or was interrupted)
    in_pool = _pool(4, (batch, height, width), cuda)
    out_pool = _pool(4, (batch, frame_bytes), cuda)
    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=2)
    reader = FrameReader(tools, info.path, width, height, start=start, duration=duration)
    timeline = Timeline(reader.times, info.fps, stop)
    sink = SegmentSink(tools, wdir, manifest, size, timeline, time_base, info.sample_aspect_ratio, encode,
                        frames_per_segment, b_frames, output=output)
    total = info.estimated_frames
    if duration is not None:
        total = round(duration * info.fps)
    elif start and total is not None:
        total = max(0, total - round(start * info.fps))
    bar = tqdm(total=total, initial=skip, unit="frame", desc="colorizing", disable=not progress, smoothing=0.1)
    errors: list[BaseException] = []

    def read_loop() -> None:
        try:
            if reader.skip(skip) < skip:
                raise VideoError("The source has fewer frames than the finished segments of the earlier run; "
                                 "delete the work folder or pass resume=False.")
            while True:
                buf = _get(in_pool, stop_read)
                n = reader.read_into(buf.numpy())
                if n:
                    _put(q_in, (buf, n), stop_read)
                else:
                    in_pool.put(buf)
                if n < batch:
                    break
            _put(q_in, _Done(reader.finish()), stop_read)
        except _Stop:
            pass
        except BaseException as exc:  # handed to the main thread
            try:
                _put(q_in, _Failed(exc), stop_read)
            except _Stop:
                pass

    def write_loop() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is None:
                    break
                buf, n, event = item
                if event is not None:
                    event.synchronize()
                sink.write(buf.numpy()[:n])
                out_pool.put(buf)
                bar.update(n)
            sink.close_segment()
        except _Stop:
            pass
        except MissingFrameTime as exc:
            if not stop_read.is_set():
                errors.append(exc)
                stop.set()
                return
            # Decoding was stopped (interrupted, or the model failed) before ffmpeg told the time of the
            # last frames: keep those with a time as a finished segment, to resume after; drop the rest.
            try:
                sink.close_segment()
                while _get(q_out, stop) is not None:
                    pass
            except _Stop:
                pass
            except BaseException as exc2:
                errors.append(exc2)
                stop.set()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=read_loop, daemon=True), threading.Thread(target=write_loop, daemon=True)]
    for t in threads:
        t.start()
    pending = None  # (input buffer, event) of the batch whose output is still being copied off the device
    diagnostics: dict = {}
    try:
        try:
            while True:
                item = _get(q_in, stop)
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, _Done):
                    diagnostics = item.diagnostics
                    break
                buf, n = item
                yuv = colorize_frames(colorizer, buf[:n], rf, smoother)
                out_buf = _get(out_pool, stop)
                out_buf[:n].copy_(yuv, non_blocking=cuda)
                event = torch.cuda.Event() if cuda else None
                if event is not None:
                    event.record()
                # This batch is queued on the device; now hand back the previous batch's input buffer.
                if pending is not None:
                    if pending[1] is not None:
                        pending[1].synchronize()
                    in_pool.put(pending[0])
                pending = (buf, event)
                _put(q_out, (out_buf, n, event), stop)
        except _Stop:
            raise (errors[0] if errors else VideoError("The video pipeline stopped unexpectedly.")) from None
        except BaseException:
            # Interrupted (Ctrl-C) or the model failed: stop decoding, but let the writer finish the
            # frames already colorized and record them as a (short) segment, so a rerun resumes there.
            stop_read.set()
            reader.close()
            if not errors:
                try:
                    _put(q_out, None, stop)
                    threads[1].join()
                except _Stop:
                    pass
            raise
        _put(q_out, None, stop)
        threads[1].join()
        if errors:
            raise errors[0]
    except BaseException:
        stop.set()
        stop_read.set()
        reader.close()
        for t in threads:
            t.join(timeout=10)
        sink.abort()
        raise
    finally:
        bar.close()
    threads[0].join(timeout=10)
    frames = sum(s["frames"] for s in manifest["segments"])
    if frames != reader.frames_read:
        raise VideoError(f"{reader.frames_read} frames were decoded but {frames} encoded; the result was discarded.")
    if frames == 0:
        shutil.rmtree(wdir, ignore_errors=True)
        raise InputError(f"{info.path!r} contains no decodable video frames (zero-length or fully corrupt).")
    manifest["decode"] = {k: v for k, v in diagnostics.items() if k != "messages"}
    manifest["end"] = timeline.end(frames - 1, duration)
    manifest["repaired_times"] = timeline.repaired
    manifest["complete"] = True
    save_manifest(wdir, manifest)
