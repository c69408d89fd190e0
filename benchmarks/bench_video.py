"""End-to-end video speed: Colorizer's pipeline against a DeOldify-style frames-on-disk baseline.

Both run the Video model's architecture (DeOldify wide U-Net, ResNet-101; random weights give the
same speed) at render factor 21 on a synthetic 1080p 25 fps clip with audio, in one process:

* **ours**: :func:`colorizer_lib.video.colorize_video` (decode pipe -> batched bf16 model ->
  chroma smoothing -> compose + YUV conversion on the GPU -> x264 encode pipe -> audio mux),
  timed from the source file to the finished output file.
* **baseline**: what DeOldify's ``VideoColorizer`` does: ffmpeg extracts JPEG frames to disk, then
  per frame (batch 1, float32, spectral-norm hooks live) PIL load, square resize, grey, model,
  resize back, OpenCV YUV merge on the CPU, JPEG save; then x264 (crf 17) from the JPEGs, audio
  extraction and a second mux. Timed the same way on the first ``--baseline-seconds`` of the clip.

Reports frames per second, mean GPU utilisation (NVML, sampled every 50 ms) and peak GPU memory
for each, and the speed ratio. Writes JSON (``--json``) for benchmarks/results/.

    python benchmarks/bench_video.py --seconds 20 --json results.json

On a GPU machine without ffmpeg (the project's H100/H200 device machines), carry the PyPI wheel
``imageio_ffmpeg-0.6.0-py3-none-manylinux2014_x86_64.whl`` (a static ffmpeg 7.0.2 with libx264, no
ffprobe and no NVENC: the pipeline probes through ``ffmpeg -i`` then) and point the pipeline at it::

    mkdir -p /tmp/ff && python3 -m zipfile -e imageio_ffmpeg-*.whl /tmp/ff
    export COLORIZER_FFMPEG=$(ls /tmp/ff/imageio_ffmpeg/binaries/ffmpeg-*) && chmod +x $COLORIZER_FFMPEG
    PYTHONUNBUFFERED=1 python3 benchmarks/bench_video.py --json benchmarks/results/video_$(date +%F).json

The H100 has no NVENC engine, so encoding is libx264 on the CPU cores; ``--presets`` times several.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorizer_lib.colorizer import Colorizer  # noqa: E402
from colorizer_lib.models import build_generator  # noqa: E402
from colorizer_lib.video import EncodeSettings, colorize_frames, colorize_video, find_tools  # noqa: E402
from colorizer_lib.video.settings import FRAME_BATCH_SIZES  # noqa: E402


class GpuSampler:
    """Samples GPU utilisation (%) and used memory (MiB) with NVML in a background thread."""

    def __init__(self, interval: float = 0.05, enabled: bool = True):
        self.interval, self.util, self.mem = interval, [], []
        self._stop = threading.Event()
        self._nvml = None
        if not enabled:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception:  # no NVML: utilisation is reported as None
            self._nvml = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set() and self._nvml is not None:
            self.util.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            self.mem.append(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.util:
            return {"gpu_util_mean_pct": None, "gpu_util_median_pct": None, "nvml_mem_peak_mib": None}
        return {"gpu_util_mean_pct": round(float(np.mean(self.util)), 1),
                "gpu_util_median_pct": float(np.median(self.util)),
                "nvml_mem_peak_mib": round(max(self.mem))}


def ff(tools, *args: str) -> None:
    subprocess.run([tools.ffmpeg, "-nostdin", "-v", "error", "-y", *args], check=True)


def make_clip(tools, path: Path, seconds: float, size: str, fps: int) -> Path:
    """testsrc2 turned grey (an old film has no colour) plus a sine track, H.264 + AAC."""
    ff(tools, "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
       "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-vf", "hue=s=0",
       "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac",
       "-shortest", str(path))
    return path


# --------------------------------------------------------------------------------------------- baseline

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _yuv_merge(orig: np.ndarray, color: np.ndarray) -> np.ndarray:
    """DeOldify's post-process: keep the original's Y, take U/V from the prediction (OpenCV 8-bit YUV)."""
    try:
        import cv2

        oy = cv2.cvtColor(orig, cv2.COLOR_RGB2YUV)
        cy = cv2.cvtColor(color, cv2.COLOR_RGB2YUV)
        cy[..., 0] = oy[..., 0]
        return cv2.cvtColor(cy, cv2.COLOR_YUV2RGB)
    except ImportError:  # same maths in numpy
        o = orig.astype(np.float32)
        c = color.astype(np.float32)
        y = o @ np.array([0.299, 0.587, 0.114], np.float32)
        cyl = c @ np.array([0.299, 0.587, 0.114], np.float32)
        u, v = 0.492 * (c[..., 2] - cyl), 0.877 * (c[..., 0] - cyl)
        rgb = np.stack([y + 1.140 * v, y - 0.395 * u - 0.581 * v, y + 2.032 * u], -1)
        return rgb.clip(0, 255).astype(np.uint8)


def run_baseline(tools, model: torch.nn.Module, src: Path, work: Path, render_factor: int, fps: int,
                 device: torch.device) -> dict:
    """DeOldify's VideoColorizer, step for step (see the module docstring). Returns frames and seconds."""
    from PIL import Image

    bw, colour = work / "bwframes", work / "colorframes"
    bw.mkdir()
    colour.mkdir()
    sz = 16 * render_factor
    mean, std = IMAGENET_MEAN.to(device), IMAGENET_STD.to(device)
    t0 = time.perf_counter()
    ff(tools, "-i", str(src), "-f", "image2", "-vcodec", "mjpeg", "-q:v", "0", str(bw / "%05d.jpg"))
    frames = sorted(bw.glob("*.jpg"))
    with torch.no_grad():
        for f in frames:
            orig = Image.open(f).convert("RGB")
            small = orig.resize((sz, sz), resample=Image.BILINEAR).convert("LA").convert("RGB")
            x = torch.from_numpy(np.asarray(small, np.float32) / 255).permute(2, 0, 1)[None].to(device)
            out = model((x - mean) / std)
            out = (out * std + mean).clamp(0, 1)
            arr = (out[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
            raw = Image.fromarray(arr).resize(orig.size, resample=Image.BILINEAR)
            merged = _yuv_merge(np.asarray(orig), np.asarray(raw))
            Image.fromarray(merged).save(colour / f.name)  # JPEG, PIL's default quality 75
            if device.type == "cuda":
                torch.cuda.empty_cache()
    no_audio = work / "result_no_audio.mp4"
    ff(tools, "-f", "image2", "-framerate", str(fps), "-i", str(colour / "%05d.jpg"), "-crf", "17",
       "-vcodec", "libx264", str(no_audio))
    aac = work / "audio.aac"
    ff(tools, "-i", str(src), "-vn", "-acodec", "copy", str(aac))
    ff(tools, "-i", str(no_audio), "-i", str(aac), "-shortest", "-c:v", "copy", "-c:a", "aac", "-b:a", "256k",
       str(work / "result.mp4"))
    return {"frames": len(frames), "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------- main

def measure(fn, cuda: bool = True) -> dict:
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with GpuSampler(enabled=cuda) as sampler:
        result = fn()
        if cuda:
            torch.cuda.synchronize()
    result.update(sampler.summary())
    if cuda:
        result["torch_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["torch_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    result["fps"] = round(result["frames"] / result["seconds"], 1)
    return result


def model_only_fps(col: Colorizer, batch: int, height: int, width: int, rf: int, iters: int = 10) -> dict:
    """Throughput of the GPU part alone (upload excluded): predict_chroma, and the whole colorize_frames."""
    frames = torch.randint(0, 256, (batch, height, width), dtype=torch.uint8, device=col.device)
    luma = frames.unsqueeze(1).float() / 255
    sync = torch.cuda.synchronize if col.device.type == "cuda" else (lambda: None)
    out = {}
    for name, fn in (("predict_chroma_fps", lambda: col.predict_chroma(luma, rf)),
                     ("gpu_stage_fps", lambda: colorize_frames(col, frames, rf, None))):
        fn()
        sync()
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        out[name] = round(batch * iters / (time.perf_counter() - t), 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="clip length for our pipeline")
    p.add_argument("--baseline-seconds", type=float, default=4.0, help="clip length for the slow baseline")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--render-factor", type=int, default=21)
    p.add_argument("--arch", default="deoldify-wide-resnet101", help="models.ARCHITECTURES key (Video model)")
    p.add_argument("--batch-size", type=int, default=FRAME_BATCH_SIZES["cuda"])
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--presets", default="veryfast,superfast", help="x264 presets to time, comma-separated")
    p.add_argument("--smoothing", type=float, default=0.6)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run of this script)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("This benchmark needs a CUDA GPU (or --device cpu for a smoke run).", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    tools = find_tools()
    width, height = map(int, args.size.split("x"))
    raw_model = build_generator(args.arch).eval()
    baseline_model = copy.deepcopy(raw_model).to(device)  # DeOldify: float32, norms live, no folding
    col = Colorizer.from_model(raw_model, name="video", default_render_factor=args.render_factor, device=device,
                               dtype=args.dtype)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu", "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__,
        "ffmpeg": subprocess.run([tools.ffmpeg, "-version"], capture_output=True, text=True).stdout.split("\n")[0],
        "arch": args.arch, "render_factor": args.render_factor, "size": args.size, "fps": args.fps,
        "batch_size": args.batch_size, "dtype": args.dtype, "smoothing": args.smoothing,
    }
    def save() -> None:  # after every stage, so a failure later still leaves the numbers so far
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        clip = make_clip(tools, tmp / "clip.mp4", args.seconds, args.size, args.fps)
        results["clip_seconds"] = args.seconds
        print(f"clip made in {time.perf_counter() - t:.1f} s", flush=True)
        results["model_only"] = model_only_fps(col, args.batch_size, height, width, args.render_factor)
        print("model only:", results["model_only"], flush=True)
        save()
        colorize_frames(col, torch.zeros(args.batch_size, height, width, dtype=torch.uint8), args.render_factor)
        ours = {}
        for preset in args.presets.split(","):
            out = tmp / f"ours_{preset}.mp4"
            run = measure(lambda: _ours(clip, col, out, args, preset), cuda)
            ours[preset] = run
            results["ours"] = ours
            print(f"ours ({preset}):", run, flush=True)
            save()
        if not args.no_baseline:
            base_clip = make_clip(tools, tmp / "base.mp4", args.baseline_seconds, args.size, args.fps)
            work = tmp / "baseline"
            work.mkdir()
            results["baseline"] = measure(lambda: run_baseline(tools, baseline_model, base_clip, work,
                                                               args.render_factor, args.fps, device), cuda)
            print("baseline:", results["baseline"], flush=True)
            for preset, run in ours.items():
                run["speedup_vs_baseline"] = round(run["fps"] / results["baseline"]["fps"], 1)
    print(json.dumps(results, indent=1))
    save()
    return 0


def _ours(clip: Path, col: Colorizer, out: Path, args, preset: str) -> dict:
    result = colorize_video(clip, col, out, render_factor=args.render_factor, smoothing=args.smoothing,
                            batch_size=args.batch_size, encode=EncodeSettings(preset=preset), progress=False)
    return {"frames": result.frames_out, "seconds": result.seconds, "audio_streams": result.audio_streams,
            "output_mb": round(out.stat().st_size / 1e6, 1)}


if __name__ == "__main__":
    sys.exit(main())
