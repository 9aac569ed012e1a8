"""PNG bytes on graphics (flat colours, text, anti-aliased edges): kmq's
default output and its efforts against pngquant, same K.

The images are drawn by this script (deterministic; nothing to download):

* ``ui``: a 1280 x 800 UI mock-up, a gradient title bar and twelve cards of
  text with a coloured dot each (256 distinct colours: lossless at K = 256);
* ``ui-aa``: the same, halved and enlarged again (bicubic), so that every
  edge is anti-aliased (thousands of colours);
* ``icons``: a 512 x 512 sheet of 64 flat, anti-aliased shapes on white.

For each image and K: ``kmq.compress(image, K, seed=0)`` (dithered, as
kmq compress runs) written at effort 1 (the default) and 2, and undithered
at effort 1; ``pngquant K`` and ``pngquant --nofs K`` (skipped, and said,
when pngquant is not installed). Prints a Markdown table of bytes and the
PNG encode time of kmq's default.

Usage::

    python benchmarks/graphics.py [--k 16 64 256] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import kmq


def make_images(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    width, height = 1280, 800
    ui = Image.new("RGB", (width, height), (245, 246, 248))
    draw = ImageDraw.Draw(ui)
    for y in range(60):
        draw.line([(0, y), (width, y)], fill=(30 + y, 60 + y, 120 + y))
    for i in range(12):
        x0, y0 = 40 + (i % 4) * 300, 100 + (i // 4) * 220
        draw.rounded_rectangle([x0, y0, x0 + 260, y0 + 190], radius=12, fill=(255, 255, 255), outline=(220, 222, 228))
        for j in range(6):
            draw.text((x0 + 16, y0 + 16 + j * 24), f"Item {i}-{j}: lorem ipsum dolor", fill=(40, 40, 50))
        draw.ellipse([x0 + 200, y0 + 130, x0 + 240, y0 + 170], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    paths = {"ui": folder / "ui.png", "ui-aa": folder / "ui-aa.png", "icons": folder / "icons.png"}
    ui.save(paths["ui"])
    ui.resize((width // 2, height // 2), Image.Resampling.LANCZOS).resize((width, height), Image.Resampling.BICUBIC).save(paths["ui-aa"])
    # Shapes drawn at 4x and shrunk: anti-aliased edges, flat insides.
    big = Image.new("RGB", (2048, 2048), (255, 255, 255))
    draw = ImageDraw.Draw(big)
    for i in range(64):
        x0, y0 = (i % 8) * 256 + 24, (i // 8) * 256 + 24
        colour = tuple(int(v) for v in rng.integers(0, 230, 3))
        box = [x0, y0, x0 + 208, y0 + 208]
        [draw.ellipse, draw.rectangle, lambda b, fill: draw.regular_polygon((x0 + 104, y0 + 104, 104), 3 + i % 5, fill=fill),
         lambda b, fill: draw.rounded_rectangle(b, radius=48, fill=fill)][i % 4](box, fill=colour)
    big.resize((512, 512), Image.Resampling.LANCZOS).save(paths["icons"])
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--keep", type=Path, default=None, help="write the images here and keep them")
    args = ap.parse_args()
    pngquant = shutil.which("pngquant")
    if not pngquant:
        print("pngquant not installed: its columns are skipped")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = make_images(folder)
        print("| image | colours | K | kmq (default) | kmq -O 2 | kmq --nofs | pngquant | pngquant --nofs | kmq PNG encode (ms) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, path in paths.items():
            for k in args.k:
                c = kmq.compress(path, k, seed=0)
                start = time.perf_counter()
                default = c.to_bytes("png")
                seconds = time.perf_counter() - start
                effort2 = c.to_bytes("png", effort=2)
                plain = kmq.compress(path, k, seed=0, dither=0).to_bytes("png")
                peers = ["–", "–"]
                if pngquant:
                    out = Path(tmp) / "pq.png"
                    for i, options in enumerate(([], ["--nofs"])):
                        subprocess.run([pngquant, *options, "--strip", "-f", "-o", str(out), str(k), str(path)], check=True)
                        peers[i] = f"{out.stat().st_size:,}"
                print(f"| {name} | {c.n_colors_in:,} | {k} | {len(default):,} | {len(effort2):,} | {len(plain):,} | "
                      f"{peers[0]} | {peers[1]} | {seconds * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
