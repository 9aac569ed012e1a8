"""Time and error of each ``--speed`` level (kmq._quantize.SPEEDS).

For each level, every image is compressed at K (undithered: dithering does
not change the fit) with the level's n_init, tol and sample; reported: the
median over images of the fit-and-map time (seconds, ``Compressed.seconds``)
and of the mean Oklab error (ΔEok x 100, ``Compressed.mean_error``), and
kmq's quality (0-100) of that median error.

    python benchmarks/speed_levels.py ../shared/bench/kodak/kodim0[1-4].png -k 64
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from PIL import Image

import kmq
from kmq._engine.colorspace import to_space
from kmq._quality import quality_error, quality_from_error
from kmq._quantize import SPEEDS


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="+")
    parser.add_argument("-k", type=int, default=64)
    args = parser.parse_args(argv)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in args.images]
    kmq.compress(images[0][:64, :64], 4)  # load the compiled modules first
    print("| speed | n_init | tol | sample | time (s, median) | mean ΔEok x 100 (median) | quality |")
    print("|---|---|---|---|---|---|---|")
    for level, knobs in SPEEDS.items():
        times, errors, qualities = [], [], []
        for image in images:
            c = kmq.compress(image, args.k, n_init=knobs["n_init"], tol=knobs["tol"], sample=knobs["sample"], dither=0)
            times.append(c.seconds)
            errors.append(c.mean_error)
            diff = to_space(image.reshape(-1, 3), "oklab") - to_space(c.reconstruct().reshape(-1, 3), "oklab")
            qualities.append(quality_from_error(quality_error(np.sqrt((diff * diff).sum(axis=1)))))
        error = statistics.median(errors)
        print(
            f"| {level} | {knobs['n_init']} | {knobs['tol']:g} | {knobs['sample'] or 1:g} | {statistics.median(times):.3f} "
            f"| {error:.3f} | {statistics.median(qualities):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
