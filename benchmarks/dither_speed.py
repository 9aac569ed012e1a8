"""Milliseconds per megapixel of the dithering kernel, against the target of
40 ms/MP (issue: "Looks better than pngquant").

For each image and K: fit the palette once (``kmq.compress(..., dither=0)``),
then time the error-diffusion pass alone, as ``kmq.compress`` runs it (the
grid cell and the edge rule of the defaults), best of ``--repeats`` runs.

    python benchmarks/dither_speed.py IMAGE [IMAGE ...] [--ks 16,64,256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import kmq
from kmq._engine.colorspace import PaletteSearch, to_space
from kmq._engine.dither import MODE_ANY, dither_labels
from kmq._engine.histogram import color_histogram, pack_colors
from kmq._quantize import DEFAULT_DITHER, DEFAULT_SPACE, DITHER_EDGE, _dither_cell


def dither_inputs(c):
    """What ``kmq.compress`` hands the dithering kernel for the RGB image
    and palette of ``c`` (a kmq.Compressed): (color_index (H, W), points,
    start, mode, search, opaque_entry), as dither_labels takes them."""
    pixels = c.source.pixels
    keys = pack_colors(pixels.reshape(-1, pixels.shape[2]))
    histogram = color_histogram(keys, pixels.shape[2])
    color_index = histogram.lookup(np.arange(histogram.n_colors, dtype=np.int32), keys).reshape(pixels.shape[:2])
    points = to_space(histogram.colors, DEFAULT_SPACE)
    search = PaletteSearch(c.palette, DEFAULT_SPACE)
    start, _ = search.nearest(points)
    mode = np.full(histogram.n_colors, MODE_ANY, np.uint8)
    return color_index, points, start, mode, search, np.ones(len(c.palette), bool)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--ks", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("| image | megapixels | K | ms | ms per MP |\n|---|---|---|---|---|")
    for path in args.images:
        for k in (int(v) for v in args.ks.split(",")):
            c = kmq.compress(path, k, dither=0)
            color_index, points, start, mode, search, opaque = dither_inputs(c)
            best = np.inf
            for _ in range(args.repeats):
                t = time.perf_counter()
                dither_labels(color_index, points, start, mode, search, opaque, DEFAULT_DITHER,
                              edge=DITHER_EDGE[DEFAULT_SPACE], cell=_dither_cell(search))
                best = min(best, time.perf_counter() - t)
            mp = color_index.size / 1e6
            print(f"| {path.rsplit('/', 1)[-1]} | {mp:.2f} | {k} | {best * 1e3:.0f} | {best * 1e3 / mp:.1f} |")


if __name__ == "__main__":
    main()
