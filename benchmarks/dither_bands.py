"""Do the seams between dithering bands show? The error of the rows at each
seam against the image's, for several warm-up row counts and for one band
(the run from the top), as ``kmq.compress`` dithers by default.

    python benchmarks/dither_bands.py IMAGE [IMAGE ...] [--ks 16,256] [--warm 0,4,8,16]

For each image and K: fit the palette once (``kmq.compress(..., dither=0)``),
dither with the bands of ``kmq._engine.dither.dither_bands`` but each
band's warm-up rows set to each ``--warm`` count, and with one band. The
error is what the eye sees of it: both images in Oklab, box-blurred over
5 x 5 pixels, the distance between them (x 100) per pixel, averaged per row.
Printed per setting: the mean over images and K of (mean error of the 3 rows
around each seam) / (mean error of all rows), its largest value, and the
mean error. A seam that shows is a row of more error: a ratio above the
one-band run's (whose "seams" are the same rows, undisturbed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import kmq
from kmq._engine.colorspace import to_space
from kmq._engine.dither import dither_bands, dither_labels
from kmq._quantize import DEFAULT_DITHER, DEFAULT_SPACE, DITHER_EDGE, _dither_cell

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dither_speed import dither_inputs  # noqa: E402


def blur(a: np.ndarray, r: int = 2) -> np.ndarray:
    """Box blur of (H, W, C) over (2r+1) x (2r+1) pixels, edges repeated."""
    for axis in (0, 1):
        pad = [(r + 1, r) if i == axis else (0, 0) for i in range(a.ndim)]
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
        n = a.shape[axis]
        a = (np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis) - np.take(c, np.arange(n), axis=axis)) / (2 * r + 1)
    return a


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--ks", default="16,256")
    parser.add_argument("--warm", default="0,4,8,16")
    args = parser.parse_args(argv)
    settings = [int(v) for v in args.warm.split(",")] + ["one band"]
    results = {s: [] for s in settings}
    for path in args.images:
        for k in (int(v) for v in args.ks.split(",")):
            c = kmq.compress(path, k, dither=0)
            pixels = c.source.pixels
            if pixels.ndim != 3 or pixels.shape[2] != 3:
                raise SystemExit(f"{path}: RGB images only")
            h, w = pixels.shape[:2]
            layout = dither_bands(h, w)
            if len(layout) < 2:
                print(f"{path}: one band at {w} x {h}, skipped")
                break
            seams = [first for _, first, _ in layout[1:]]
            color_index, points, start, mode, search, opaque = dither_inputs(c)
            seen = blur(to_space(pixels.reshape(-1, 3), "oklab").reshape(h, w, 3))
            for setting in settings:
                if setting == "one band":
                    bands = [(0, 0, h)]
                else:
                    bands = [(max(0, first - setting) if b else 0, first, end) for b, (_, first, end) in enumerate(layout)]
                labels = dither_labels(color_index, points, start, mode, search, opaque, DEFAULT_DITHER,
                                       edge=DITHER_EDGE[DEFAULT_SPACE], cell=_dither_cell(search), bands=bands)
                shown = blur(to_space(c.palette[labels].reshape(-1, 3), "oklab").reshape(h, w, 3))
                rows = np.linalg.norm(shown - seen, axis=2).mean(axis=1)
                at_seams = np.concatenate([rows[s - 1 : s + 2] for s in seams])
                results[setting].append((at_seams.mean() / rows.mean(), rows.mean()))
    print("| warm-up rows | seam rows' error / all rows' (mean) | (largest) | mean error |\n|---|---|---|---|")
    for setting in settings:
        if not results[setting]:
            continue
        ratios, errors = np.array(results[setting]).T
        print(f"| {setting} | {ratios.mean():.3f} | {ratios.max():.3f} | {errors.mean():.4f} |")


if __name__ == "__main__":
    main()
