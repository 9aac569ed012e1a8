"""Why kmq's default PNG can be larger than ``pngquant --nofs``'s: the
deflate settings, or the index map?

For every image and K: kmq's undithered result (``kmq.compress(path, K,
seed=0, dither=0)``, as in container_size.py) and ``pngquant --nofs
--strip K`` of the same source. Sizes, each over pngquant's file:

* ``O1``: kmq's default PNG (effort 1: zlib level 6, filter none);
* ``l9``: the same rows at zlib level 9, memLevel 9;
* ``filters``: the smallest of the five PNG filter types applied to every
  row, and of a per-row choice (least sum of absolute residuals, libpng's
  heuristic), at level 6;
* ``pq map``: pngquant's own index map and palette written by kmq's PNG
  writer at effort 1, which tells the deflate apart from the map;
* ``oxipng 1``: kmq's default PNG through pyoxipng's
  ``optimize_from_memory(level=1, filter=[NoOp])`` (libdeflate's
  optimal parse, no filter search), if pyoxipng is installed, and its
  median seconds per image.

Usage::

    python benchmarks/png_map_cost.py [FOLDER] [--k 16 64]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

import kmq
from kmq import _io
from kmq._container import _pack

try:
    import oxipng
except ImportError:
    oxipng = None
    print("pyoxipng not installed: the oxipng 1 column is skipped")

ROOT = Path(__file__).resolve().parents[1]


def _filtered(packed: np.ndarray, kind: int) -> np.ndarray:
    """PNG filter ``kind`` (0..4) of each row of bytes (1 byte per pixel unit)."""
    x = packed.astype(np.int16)
    left = np.zeros_like(x)
    left[:, 1:] = x[:, :-1]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    upleft = np.zeros_like(x)
    upleft[1:, 1:] = x[:-1, :-1]
    if kind == 0:
        r = x
    elif kind == 1:
        r = x - left
    elif kind == 2:
        r = x - up
    elif kind == 3:
        r = x - (left + up) // 2
    else:
        p = left + up - upleft
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
        r = x - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    return (r & 0xFF).astype(np.uint8)


def _idat_sizes(labels: np.ndarray, k: int) -> dict:
    bits = _io._png_bits(k)
    height = labels.shape[0]
    packed = np.frombuffer(_pack(labels, bits), dtype=np.uint8).reshape(height, -1)
    rows = {kind: _filtered(packed, kind) for kind in range(5)}

    def deflated(kinds, level=6, mem=8):
        data = np.concatenate([np.asarray(kinds, np.uint8)[:, None], np.stack([rows[c][y] for y, c in enumerate(kinds)])], axis=1)
        compressor = zlib.compressobj(level, zlib.DEFLATED, 15, mem)
        return len(compressor.compress(data.tobytes()) + compressor.flush())

    none = [0] * height
    cost = np.stack([np.abs(rows[c].astype(np.int8).astype(np.int32)).sum(axis=1) for c in range(5)])
    sizes = {"none": deflated(none), "l9": deflated(none, 9, 9)}
    sizes["filters"] = min([deflated([c] * height) for c in range(5)] + [deflated(list(cost.argmin(axis=0)))])
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared" / "bench" / "kodak")
    ap.add_argument("--k", type=int, nargs="+", default=[16, 64])
    args = ap.parse_args()
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pq.png"
        for k in args.k:
            print(f"\nK = {k}: sizes over pngquant --nofs's file\n")
            print("| image | O1 | l9 | filters | pq map | oxipng 1 |\n|---|---:|---:|---:|---:|---:|")
            table, ox_seconds = [], []
            for path in paths:
                c = kmq.compress(path, k, seed=0, dither=0)
                o1 = len(c.to_bytes("png", strip=True))
                sizes = _idat_sizes(c.labels, len(c.palette))
                rest = o1 - sizes["none"]  # signature, IHDR, PLTE, IDAT framing, IEND
                subprocess.run(["pngquant", "--nofs", "--strip", "-f", "-o", str(out), str(k), str(path)], check=True)
                pq = out.stat().st_size
                with Image.open(out) as im:
                    pq_labels = np.asarray(im)
                    n = int(pq_labels.max()) + 1
                    pq_palette = np.array(im.getpalette()[: 3 * n], dtype=np.uint8).reshape(n, 3)
                pq_map = len(_io.encode_export(pq_palette, pq_labels.astype(np.uint8), "RGB", "png"))
                ox = o1
                if oxipng is not None:
                    start = time.perf_counter()
                    png = c.to_bytes("png", strip=True)
                    ox = len(oxipng.optimize_from_memory(png, level=1, filter=[oxipng.RowFilter.NoOp], optimize_alpha=False))
                    ox_seconds.append(time.perf_counter() - start)
                row = (o1, rest + sizes["l9"], rest + sizes["filters"], pq_map, ox, pq)
                table.append(row)
                print(f"| {path.name} | " + " | ".join(f"{v / pq:.3f}" for v in row[:5]) + " |", flush=True)
            a = np.array(table, dtype=float)
            names = ("O1", "l9", "filters", "pq map") + (("oxipng 1",) if oxipng is not None else ())
            print()
            for i, name in enumerate(names):
                print(f"- {name}: no larger than pngquant on {(a[:, i] <= a[:, 5]).sum()}/{len(a)} images "
                      f"(total {a[:, i].sum() / a[:, 5].sum():.3f}x)")
            if ox_seconds:
                print(f"- oxipng 1: {statistics.median(ox_seconds):.3f} s per image (median; encode included)")


if __name__ == "__main__":
    main()
