"""Compare .kmq file sizes with Pillow's optimized indexed PNG.

For every image in FOLDER and every K, the image is quantized by kmq's
k-means (seed 0; or by Pillow's median cut without dithering with
``--quantizer mediancut``); the same palette and labels are then written as
a ``.kmq`` file (:func:`kmq._container.encode`) and as an indexed PNG
(``Image.fromarray(labels, "P")`` + ``putpalette``, saved with
``optimize=True``, so Pillow picks the smallest bit depth itself: the bytes
``kmq compress -o x.png`` writes).

Prints one Markdown table per K and the number of images where kmq is
smaller.

Usage::

    PYTHONPATH=src python benchmarks/container_size.py [FOLDER] [--k 16 64 256] [--quantizer kmeans|mediancut]

FOLDER defaults to ``shared/bench/kodak`` beside the repository.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

_REPO = Path(__file__).resolve().parents[1]
try:
    import kmq
    from kmq import _container
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(_REPO / "src"))
    import kmq
    from kmq import _container


def quantize_kmeans(path: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """kmq's k-means, seed 0: (palette (K', 3) uint8, labels (H, W) uint8)."""
    compressed = kmq.compress(path, k, seed=0)
    return compressed.palette, compressed.labels


def quantize_mediancut(path: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Median-cut quantize an image: (palette (K', 3) uint8, labels (H, W) uint8)."""
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(k, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    labels = np.asarray(q)
    n = int(labels.max()) + 1
    n = max(n, min(k, len(q.getpalette()) // 3))
    palette = np.array(q.getpalette()[: 3 * n], np.uint8).reshape(-1, 3)
    return palette, labels


def png_size(palette: np.ndarray, labels: np.ndarray) -> int:
    im = Image.fromarray(labels.astype(np.uint8), "P")
    im.putpalette(palette.tobytes())
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return len(buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", type=Path, default=_REPO.parent / "shared" / "bench" / "kodak")
    ap.add_argument("--k", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--quantizer", choices=["kmeans", "mediancut"], default="kmeans")
    args = ap.parse_args(argv)
    quantize = quantize_kmeans if args.quantizer == "kmeans" else quantize_mediancut
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm"})
    if not paths:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 1
    for k in args.k:
        print(f"\n### K = {k}\n")
        print("| image | kmq bytes | PNG bytes | kmq/PNG | coder | encode s |")
        print("| --- | ---: | ---: | ---: | --- | ---: |")
        tk = tp = wins = 0
        tt = 0.0
        for p in paths:
            palette, labels = quantize(p, k)
            t0 = time.perf_counter()
            data = _container.encode(palette, labels, mode="RGB")
            dt = time.perf_counter() - t0
            back = _container.decode(data)
            assert np.array_equal(back.labels, labels) and np.array_equal(back.palette, palette)
            hdr = _container.read_header(data)
            png = png_size(palette, labels)
            layout = "packed" if hdr.packed else "unpacked"
            print(f"| {p.name} | {len(data):,} | {png:,} | {len(data) / png:.3f} | {hdr.coder} {layout} | {dt:.2f} |")
            tk += len(data)
            tp += png
            tt += dt
            wins += len(data) < png
        print(f"| **total** | **{tk:,}** | **{tp:,}** | **{tk / tp:.3f}** | | {tt:.1f} |")
        print(f"\nK = {k}: kmq smaller than PNG on {wins}/{len(paths)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
