"""Does kmq's perceptual error agree with SSIMULACRA2 on dithering?

For each image and each K, kmq quantizes the image twice: undithered
(``kmq.compress(path, k, dither=0)``) and with its default dithering
(``kmq.compress(path, k)``). SSIMULACRA2 (``ssimulacra2`` on PyPI, the
reference here; higher is better) says which of the two is better; so does
kmq's perceptual error (``kmq.metrics``; lower is better) for each of three
settings of its blur, and, for comparison, metrics without a blur (mean
per-pixel ΔEok x 100, PSNR, SSIM). The script counts the pairs on which
each metric picks the same one as SSIMULACRA2, and the rank correlation of
each with SSIMULACRA2 over every result.

The settings (standard deviations of the Gaussians on lightness and on the
two chroma coordinates, in pixels) come from S-CIELAB's filters (Zhang and
Wandell 1996, after Poirson and Wandell 1993): sums of Gaussians with
these full widths at half maximum (degrees of visual angle) and weights:

    luminance    0.05 (0.921), 0.225 (0.105), 7.0 (-0.108)
    red-green    0.0685 (0.531), 0.826 (0.33)
    blue-yellow  0.092 (0.488), 0.645 (0.371)

Each is replaced by the Gaussian of the same half-amplitude frequency
(where the filter's modulation transfer falls to 0.5, which keeps the
chroma filters' wide components in the count): standard deviations of
0.021 degrees on luminance, 0.053 on red-green and 0.091 on blue-yellow;
one chroma width for both chroma coordinates, the mean of the two, 0.072.
Degrees become pixels at a viewing resolution, the three settings tried:
40 image pixels per degree is a 96-dpi screen seen from 60 cm; 20 is the
same zoomed to 200 % (or seen from 30 cm), the way quantization is
inspected; 80 is a screen of twice the density showing the image pixel
for pixel (or the first one seen from twice as far).

    python benchmarks/perceptual_metric.py ../shared/bench/kodak --out perceptual_metric.json
    python benchmarks/perceptual_metric.py --summary perceptual_metric.json   # the tables again

Needs the ``bench`` extra (ssimulacra2, scipy through scikit-image).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import kmq
from kmq import metrics

KS = (16, 64, 256)
#: The three settings tried: image pixels per degree of visual angle.
PIXELS_PER_DEGREE = (20, 40, 80)
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "kodak"

#: S-CIELAB's filters: (full width at half maximum in degrees, weight).
SCIELAB = {
    "luminance": [(0.05, 0.9207), (0.225, 0.105), (7.0, -0.108)],
    "red-green": [(0.0685, 0.531), (0.826, 0.33)],
    "blue-yellow": [(0.092, 0.4877), (0.6451, 0.3711)],
}
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _bisect(f, low, high, steps=200):
    """The root of f in [low, high], f(low) > 0 > f(high)."""
    for _ in range(steps):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if f(mid) > 0 else (low, mid)
    return 0.5 * (low + high)


def sigma_half_amplitude(parts) -> float:
    """Degrees: the Gaussian whose transfer falls to 0.5 where the filter's does."""
    total = sum(w for _, w in parts)

    def transfer(f):
        return sum(w * math.exp(-2 * math.pi**2 * (h / FWHM_PER_SIGMA) ** 2 * f * f) for h, w in parts) / total

    f_half = _bisect(lambda f: transfer(f) - 0.5, 0.01, 100.0)
    return math.sqrt(math.log(2.0) / (2 * math.pi**2 * f_half**2))


def settings() -> dict[str, tuple[float, float]]:
    """name -> (sigma lightness, sigma chroma) in pixels."""
    lightness, chroma = scielab_sigmas()
    # Rounded as kmq.metrics states its widths.
    return {f"blur at {n} px/deg": (round(n * lightness, 2), round(n * chroma, 2)) for n in PIXELS_PER_DEGREE}


def scielab_sigmas() -> tuple[float, float]:
    """(lightness, chroma) standard deviations in degrees: S-CIELAB's
    filters replaced by the Gaussians of the same half-amplitude frequency;
    one chroma width, the mean of the red-green and blue-yellow ones."""
    lightness = sigma_half_amplitude(SCIELAB["luminance"])
    chroma = 0.5 * (sigma_half_amplitude(SCIELAB["red-green"]) + sigma_half_amplitude(SCIELAB["blue-yellow"]))
    return lightness, chroma


def ssimulacra2_of(original_path: str, pixels: np.ndarray, work: str) -> float:
    import ssimulacra2

    path = os.path.join(work, "result.png")
    Image.fromarray(pixels).save(path)
    return float(ssimulacra2.compute_ssimulacra2(original_path, path))


def measure(original: np.ndarray, rebuilt: np.ndarray, chosen: dict) -> dict:
    row = {
        "per-pixel ΔEok": metrics._perceptual_error(original, rebuilt, 0.0, 0.0),
        "PSNR": metrics.psnr(original, rebuilt),
        "SSIM": metrics.ssim(original, rebuilt),
    }
    for name, (sigma_l, sigma_c) in chosen.items():
        row[name] = metrics._perceptual_error(original, rebuilt, sigma_l, sigma_c)
    return row


#: Higher is better for these; lower for the others.
HIGHER_IS_BETTER = {"ssimulacra2", "PSNR", "SSIM"}


def _better(metric: str, dithered: float, undithered: float) -> int:
    """+1 if the dithered result is better by ``metric``, -1 if worse, 0 on a tie."""
    sign = 1 if metric in HIGHER_IS_BETTER else -1
    return int(np.sign(sign * (dithered - undithered)))


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


#: SSIMULACRA2 differences smaller than this are taken for ties in the
#: second agreement table (its scale: 90 visually lossless, 70 high quality,
#: 50 medium; a point is a small step on it).
CLEAR_DIFFERENCE = 1.0


def _agreement_table(rows: list[dict], metric_names: list[str], ks: list[int]) -> list[str]:
    pairs = {k: [r for r in rows if r["k"] == k] for k in ks}

    def reference(r):
        return _better("ssimulacra2", r["dithered"]["ssimulacra2"], r["undithered"]["ssimulacra2"])

    lines = [
        "| metric | " + " | ".join(f"K = {k}" for k in ks) + " | all |",
        "|---|" + "---|" * (len(ks) + 1),
    ]
    prefers = [sum(reference(r) > 0 for r in pairs[k]) for k in ks]
    lines.append(
        "| SSIMULACRA2 prefers dithering | "
        + " | ".join(f"{p}/{len(pairs[k])}" for p, k in zip(prefers, ks))
        + f" | {sum(prefers)}/{len(rows)} |"
    )
    for name in metric_names:
        cells, total = [], 0
        for k in ks:
            agree = sum(_better(name, r["dithered"][name], r["undithered"][name]) == reference(r) for r in pairs[k])
            total += agree
            cells.append(f"{agree}/{len(pairs[k])}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {total}/{len(rows)} |")
    return lines


def summarise(rows: list[dict], metric_names: list[str]) -> str:
    ks = sorted({r["k"] for r in rows})
    clear = [r for r in rows if abs(r["dithered"]["ssimulacra2"] - r["undithered"]["ssimulacra2"]) >= CLEAR_DIFFERENCE]
    lines = [
        "Agreement with SSIMULACRA2 on which of the dithered and undithered results is better "
        "(pairs where the metric picks the same one as SSIMULACRA2), all pairs:",
        "",
        *_agreement_table(rows, metric_names, ks),
        "",
        f"Pairs where SSIMULACRA2's two scores differ by at least {CLEAR_DIFFERENCE:g} "
        f"({len(clear)} of {len(rows)}):",
        "",
        *_agreement_table(clear, metric_names, sorted({r["k"] for r in clear})),
        "",
        "Medians, undithered / dithered:",
        "",
        "| metric | " + " | ".join(f"K = {k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
        *(
            f"| {name} | "
            + " | ".join(
                " / ".join(
                    f"{statistics.median(r[side][name] for r in rows if r['k'] == k):.3f}" for side in ("undithered", "dithered")
                )
                for k in ks
            )
            + " |"
            for name in ["ssimulacra2", *metric_names]
        ),
        "",
        "Spearman rank correlation with SSIMULACRA2 over every result (signed so that higher is better for both):",
        "",
        "| metric | ρ |",
        "|---|---|",
    ]
    results = [r[side] for r in rows for side in ("undithered", "dithered")]
    reference = [x["ssimulacra2"] for x in results]
    for name in metric_names:
        values = [x[name] if name in HIGHER_IS_BETTER else -x[name] for x in results]
        finite = [(v, s) for v, s in zip(values, reference) if v is not None and math.isfinite(v)]
        lines.append(f"| {name} | {_spearman(*zip(*finite)):.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="folder of PNG images (default: ../shared/bench/kodak)")
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--out", type=Path, default=Path("perceptual_metric.json"))
    parser.add_argument("--summary", type=Path, metavar="JSON", help="only print the tables of an earlier run's --out file")
    args = parser.parse_args(argv)
    if args.summary is not None:
        saved = json.loads(args.summary.read_text())
        print(summarise(saved["rows"], ["per-pixel ΔEok", "PSNR", "SSIM", *saved["settings"]]))
        return
    ks = [int(v) for v in args.ks.split(",")]
    chosen = settings()
    kmq_widths = (metrics.PERCEPTUAL_SIGMA_LIGHTNESS, metrics.PERCEPTUAL_SIGMA_CHROMA)
    for name, widths in chosen.items():
        note = " (kmq.metrics.perceptual_error's)" if widths == kmq_widths else ""
        print(f"{name}: sigma lightness {widths[0]:.2f} px, chroma {widths[1]:.2f} px{note}", file=sys.stderr)
    paths = sorted(args.folder.glob("*.png"))
    if not paths:
        parser.error(f"no PNG images in {args.folder}")
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        for path in paths:
            original = np.asarray(Image.open(path).convert("RGB"))
            for k in ks:
                row = {"image": path.stem, "k": k}
                for side, result in (("undithered", kmq.compress(str(path), k, dither=0)), ("dithered", kmq.compress(str(path), k))):
                    rebuilt = result.reconstruct()
                    row[side] = {"ssimulacra2": ssimulacra2_of(str(path), rebuilt, work), **measure(original, rebuilt, chosen)}
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    args.out.write_text(json.dumps({"settings": chosen, "rows": rows}, indent=1, ensure_ascii=False))
    print(f"{len(rows)} pairs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(summarise(rows, ["per-pixel ΔEok", "PSNR", "SSIM", *chosen]))


if __name__ == "__main__":
    main()
