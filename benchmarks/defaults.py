"""Measure the k-means defaults (n_init, tol) of kmq on quality and speed.

Usage: python benchmarks/defaults.py [FOLDER] [--out docs/benchmarks.md]

For 8 Kodak images (kodim01, 03, 05, 08, 13, 18, 20, 23), K = 16 and 64,
seeds 0-2, every (n_init, tol) pair of the grid: the median over images of
kmq's uint8-palette SSE (median over seeds) divided by scikit-learn's
``KMeans(n_init=1, random_state=0).inertia_`` on all pixels, and the median
CPU time of ``ColorQuantizer.fit_transform`` run on one thread (CPU time,
so that other load on the machine does not distort the comparison). The
table replaces the section between the ``kmq-defaults`` markers of --out.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- kmq-defaults:begin -->"
END = "<!-- kmq-defaults:end -->"
IMAGES = ["kodim01", "kodim03", "kodim05", "kodim08", "kodim13", "kodim18", "kodim20", "kodim23"]
GRID = [(1, 1e-3), (1, 1e-4), (1, 1e-5), (2, 1e-3), (2, 1e-4), (2, 1e-5), (3, 1e-4)]


def main() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    from PIL import Image
    from sklearn.cluster import KMeans

    from kmq import _kmeans
    from kmq._quantize import DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_TOL, ColorQuantizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT.parent / "shared" / "bench" / "kodak")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()

    _kmeans._MIN_POINTS_PER_THREAD = 1 << 40  # one thread: CPU time = work
    images = {}
    for name in IMAGES:
        with Image.open(args.folder / f"{name}.png") as image:
            images[name] = np.asarray(image.convert("RGB"))
    ColorQuantizer(16, seed=0).fit_transform(images[IMAGES[0]])  # load the kernels
    rows = []
    for k in (16, 64):
        reference = {n: KMeans(k, n_init=1, random_state=0).fit(p.reshape(-1, 3).astype(np.float64)).inertia_ for n, p in images.items()}
        for n_init, tol in GRID:
            ratios, cpu, iters = [], [], []
            for name, pixels in images.items():
                sse, seconds = [], []
                for seed in range(3):
                    start = time.process_time()
                    q = ColorQuantizer(k, seed=seed, n_init=n_init, tol=tol)
                    q.fit_transform(pixels)
                    seconds.append(time.process_time() - start)
                    sse.append(q.inertia_)
                    iters.append(q.n_iter_)
                ratios.append(statistics.median(sse) / reference[name])
                cpu.append(statistics.median(seconds))
            rows.append((k, n_init, tol, statistics.median(ratios), max(ratios), statistics.median(cpu), max(iters)))
            print(rows[-1], flush=True)

    lines = [
        BEGIN,
        "## Choosing the defaults",
        "",
        f"`python benchmarks/defaults.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{len(IMAGES)} Kodak images ({', '.join(IMAGES)}), seeds 0-2. SSE ratio: median over images of kmq's "
        "uint8-palette SSE (median over seeds) / scikit-learn `KMeans(n_init=1, random_state=0).inertia_` on all "
        "pixels; below 1 is better. CPU: median single-threaded CPU time of `ColorQuantizer(k).fit_transform` "
        "(fit and mapping). Iterations: the largest `n_iter_` seen (all levels together).",
        "",
        "| K | n_init | tol | SSE ratio, median (worst image) | CPU ms | max iterations |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k, n_init, tol, med, worst, seconds, max_iter in rows:
        mark = " **(default)**" if (n_init, tol) == (DEFAULT_N_INIT, DEFAULT_TOL) else ""
        lines.append(f"| {k} | {n_init} | {tol:g}{mark} | {med:.4f} ({worst:.4f}) | {seconds * 1000:.0f} | {max_iter} |")
    lines += [
        "",
        f"Defaults: n_init = {DEFAULT_N_INIT}, tol = {DEFAULT_TOL:g}, max_iter = {DEFAULT_MAX_ITER} "
        "(the reasons, with these figures, are in the comment above them in `src/kmq/_quantize.py`).",
        END,
    ]
    section = "\n".join(lines) + "\n"
    text = args.out.read_text() if args.out.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        after = text[text.index(END) + len(END) :].lstrip("\n")
        text = text[: text.index(BEGIN)] + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    args.out.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
