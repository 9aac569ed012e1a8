"""The quality search's cost: ``kmq.compress(image, 256, quality=(0, MAX))``
against one ``kmq.compress(image, K)`` at the K it chose, best of 3 each,
default options, in one process (issue: at most 2.5x).

    python benchmarks/quality_search_time.py --photos ../shared/bench/photos \\
        --kodak ../shared/bench/kodak

Images: Boothbay and Jewel-Changi (deep shadows) resized to 768 px wide,
Louvre to 1248 px (Lanczos), and kodim05 and kodim20 (skipped, and said, when a folder is not given).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

import kmq


def _best(run, repeat=3):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def images(photos: Path | None, kodak: Path | None):
    out = []
    if photos:
        for name, width in (("Boothbay", 768), ("Jewel-Changi", 768), ("Louvre", 1248)):
            with Image.open(photos / f"{name}.jpg") as im:
                im = im.convert("RGB")
                height = round(im.height * width / im.width)
                out.append((f"{name}, {width} x {height}", np.asarray(im.resize((width, height), Image.LANCZOS))))
    else:
        print("(no --photos: the modern photographs skipped)")
    if kodak:
        for name in ("kodim05", "kodim20"):
            out.append((name, np.asarray(Image.open(kodak / f"{name}.png").convert("RGB"))))
    else:
        print("(no --kodak: the Kodak photographs skipped)")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--kodak", type=Path)
    parser.add_argument("--max", type=int, nargs="+", default=[50, 60, 70, 80, 90])
    args = parser.parse_args(argv)
    kmq.compress(np.zeros((8, 8, 3), np.uint8), 2)  # the thread pool and imports, once
    print("| image | MAX | K chosen | quality reached | search (s) | one fit at K (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for name, pixels in images(args.photos, args.kodak):
        for high in args.max:
            search, result = _best(lambda: kmq.compress(pixels, 256, quality=(0, high)))
            fit, _ = _best(lambda: kmq.compress(pixels, result.k))
            worst = max(worst, search / fit)
            print(f"| {name} | {high} | {result.k} | {result.quality:.1f} | {search:.3f} | {fit:.3f} | {search / fit:.2f} |",
                  flush=True)
    print(f"\nworst ratio {worst:.2f}")


if __name__ == "__main__":
    main()
