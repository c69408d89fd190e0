"""Colorize the nine historical example photos and build the README's before/after grid.

    python docs/make_readme_grid.py [--model compact] [--examples examples]

Writes docs/images/grid_<model>.jpg: three rows of three (original | colorized) pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from colorizer_lib import Colorizer
from colorizer_lib.io import iter_image_files

ROOT = Path(__file__).resolve().parents[1]


def pair(original: Image.Image, colorized: Image.Image, height: int) -> Image.Image:
    width = round(original.width * height / original.height)
    out = Image.new("RGB", (2 * width + 4, height), "white")
    out.paste(original.convert("RGB").resize((width, height), Image.LANCZOS), (0, 0))
    out.paste(colorized.convert("RGB").resize((width, height), Image.LANCZOS), (width + 4, 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="compact")
    parser.add_argument("--examples", default=str(ROOT / "examples"))
    parser.add_argument("--height", type=int, default=170)
    args = parser.parse_args()
    col = Colorizer.from_pretrained(args.model)
    results = col.colorize_batch(sorted(iter_image_files(Path(args.examples))))
    pairs = [pair(r.original, r.image, args.height) for r in results]
    rows = [pairs[i:i + 3] for i in range(0, len(pairs), 3)]
    width = max(sum(p.width for p in row) + 8 * (len(row) - 1) for row in rows)
    grid = Image.new("RGB", (width, len(rows) * (args.height + 8) - 8), "white")
    for y, row in enumerate(rows):
        x = 0
        for p in row:
            grid.paste(p, (x, y * (args.height + 8)))
            x += p.width + 8
    out = ROOT / "docs" / "images" / f"grid_{col.name}.jpg"
    grid.save(out, quality=85)
    print(f"wrote {out} ({grid.width}x{grid.height})")


if __name__ == "__main__":
    main()
