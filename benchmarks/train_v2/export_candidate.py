"""Step 4 (CPU): turn a generator brought back from a device call into a candidate weights file.

    python benchmarks/train_v2/export_candidate.py RUN/gen_large --gain 1.1 --out /work/data/cand/large_g11.safetensors
    python benchmarks/train_v2/export_candidate.py RUN/gan_000300_fp16.pth --gain 1.0 --out ...

The input is either ``PREFIX`` (``PREFIX_enc.pth`` + ``PREFIX_dec.pth``, fp32) or one ``.pth`` state dict.
``--gain`` scales the chroma before its ``tanh`` (folded into the last convolution's weight and bias):
above 1 gives more saturated colours, the knob the shipped model was tuned with.
Also builds the validation folder for ``colorize bench-quality`` from ``valid.tsv`` (``--valid-folder``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

import torch  # noqa: E402

from colorizer_lib.models.compact import ARCH_NAME, CompactUnet  # noqa: E402
from colorizer_lib.training.export import export_generator  # noqa: E402


def load_state(src: str) -> dict:
    if src.endswith(".pth") and Path(src).is_file():
        return torch.load(src, map_location="cpu", weights_only=True)
    sd = torch.load(src + "_enc.pth", map_location="cpu", weights_only=True)
    sd.update(torch.load(src + "_dec.pth", map_location="cpu", weights_only=True))
    return sd


def fold_gain(model: CompactUnet, gain: float) -> CompactUnet:
    """``tanh(gain * head(x))``: scale the head convolution's weight and bias in place."""
    with torch.no_grad():
        model.decoder["head"].weight.mul_(gain)
        model.decoder["head"].bias.mul_(gain)
    return model


def build_valid_folder(tsv: Path, raw: Path, dest: Path) -> int:
    """Copy the validation photos (``source<TAB>path`` lines) to ``dest/<source>/`` for bench-quality."""
    n = 0
    for line in tsv.read_text().splitlines():
        source, rel = line.split("\t")
        target = dest / source / rel.replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy(raw / source / rel, target)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", nargs="?")
    ap.add_argument("--gain", type=float, default=1.0)
    ap.add_argument("--out")
    ap.add_argument("--valid-tsv")
    ap.add_argument("--raw")
    ap.add_argument("--valid-folder")
    args = ap.parse_args()
    if args.valid_tsv:
        n = build_valid_folder(Path(args.valid_tsv), Path(args.raw), Path(args.valid_folder))
        print(f"{n} validation photos in {args.valid_folder}")
    if args.src:
        sd = {k: v.float() if v.is_floating_point() else v for k, v in load_state(args.src).items()}
        model = CompactUnet()
        model.load_state_dict(sd, strict=True)
        fold_gain(model.eval(), args.gain)
        path = export_generator(model, args.out, ARCH_NAME, metadata={"gain": str(args.gain), "source": str(args.src)})
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main()
