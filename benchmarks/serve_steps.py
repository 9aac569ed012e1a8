"""Where the time of one slider move of ``kmq serve`` goes, step by step,
on the server (no HTTP, no browser): the work behind the result shown
(compress, the indexed PNG, PSNR) and behind the figures that follow
(SSIM, the perceptual score, the .kmq and WebP sizes).

The image is the shipped photograph resized to 1224 x 816 (1.0 MP), as in
tests/test_serve_browser.py::test_latency_one_megapixel_k64. compress is
timed twice per seed: as a library call (``kmq.compress``: its own
histogram and working-space points) and as the server makes it (the
image's kept ImageAnalysis, made by an earlier K). Each figure is the
median over seeds 1..N of wall time, milliseconds.

    python benchmarks/serve_steps.py --seeds 5 -k 64
"""

from __future__ import annotations

import argparse
import statistics
import time

from PIL import Image

import kmq
from kmq import metrics
from kmq._io import read_image
from kmq._quantize import DEFAULT_DITHER, DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_TOL, ImageAnalysis, _compress


def _ms(fn):
    start = time.perf_counter()
    value = fn()
    return 1000 * (time.perf_counter() - start), value


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-webp", action="store_true", help="skip the WebP encode (seconds at 1 MP)")
    args = parser.parse_args(argv)
    with Image.open(kmq.sample_image_path()) as image:
        pixels = image.convert("RGB").resize((1224, 816), Image.LANCZOS)
    source = read_image(pixels)
    options = dict(sample=None, n_init=DEFAULT_N_INIT, max_iter=DEFAULT_MAX_ITER, tol=DEFAULT_TOL, init="k-means++",
                   space="oklab", dither=DEFAULT_DITHER, quality=None)
    analysis = ImageAnalysis(source.pixels)
    # The page's first result (K = 16) makes the analysis and warms the engine.
    _compress(source, 16, {**options, "seed": 0}, analysis)
    steps: dict[str, list[float]] = {}
    for seed in range(1, args.seeds + 1):
        row = {}
        # The two compressions in turn first, so that neither gains from the other's caches.
        for kept in ((False, True) if seed % 2 else (True, False)):
            if kept:
                row["compress (kept analysis)"], c = _ms(lambda: _compress(source, args.k, {**options, "seed": seed}, analysis))
            else:
                row["compress (library call)"], _ = _ms(lambda: kmq.compress(source, args.k, seed=seed))
        row["PNG encode"], _ = _ms(lambda: c.to_bytes("png"))
        row["PSNR and sizes (metrics.measure)"], _ = _ms(
            lambda: metrics.measure(source.pixels, c, input_bytes=source.input_bytes, with_ssim=False)
        )
        rebuilt = c.reconstruct()
        row["SSIM"], _ = _ms(lambda: metrics.ssim(source.pixels, rebuilt))
        row["perceptual score"], _ = _ms(lambda: metrics.perceptual_score(source.pixels, rebuilt))
        row[".kmq encode"], _ = _ms(lambda: c.to_bytes("kmq"))
        if not args.no_webp and seed == 1:
            row["WebP encode (seed 1 only)"], _ = _ms(lambda: c.to_bytes("webp"))
        for name, value in row.items():
            steps.setdefault(name, []).append(value)
    print(f"| step (1224 x 816, K = {args.k}) | ms (median of {args.seeds}) |")
    print("|---|---:|")
    for name in sorted(steps, key=lambda n: not n.startswith("compress (library")):
        values = steps[name]
        print(f"| {name} | {statistics.median(values):.0f} |")


if __name__ == "__main__":
    main()
