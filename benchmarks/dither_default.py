"""How kmq's dithering default was chosen: dithering variants against
pngquant's dithered output, scored on perceptual quality and bytes.

For each image (every third Kodak photograph and the first three of a
folder of modern photographs resized to 768 px wide) and each K, kmq writes
an indexed PNG with each variant below and pngquant writes its default,
dithered one; every file is scored with SSIMULACRA2 (higher is better,
``ssimulacra2`` on PyPI) and the mean CIEDE2000 difference (lower is
better, scikit-image). Prints median scores, total bytes and how often
each variant beats pngquant.

Variants: ``fs1``: plain Floyd-Steinberg, whole error (level 1, no edge
rule); ``default``: kmq's default (``kmq._quantize.DEFAULT_DITHER`` with
the edge rule ``DITHER_EDGE``); ``fs075``: level 0.75 without the edge
rule; ``nofs``: no dithering.

    python benchmarks/dither_default.py --kodak ../shared/bench/kodak \\
        --photos ../shared/bench/photos --ks 16,64,256

Needs the ``bench`` extra and pngquant on PATH (skipped, and said, if not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import kmq
import kmq._quantize as quantize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perceptual import ciede2000  # noqa: E402


def _kmq(level, edge_rule):
    def run(image, k, path):
        saved = dict(quantize.DITHER_EDGE)
        if not edge_rule:
            for space in quantize.DITHER_EDGE:
                quantize.DITHER_EDGE[space] = 0.0
        try:
            kmq.compress(np.asarray(image), k, dither=level).save(path, format="png")
        finally:
            quantize.DITHER_EDGE.update(saved)
    return run


def _pngquant(image, k, path):
    source = path + ".in.png"
    image.save(source)
    subprocess.run(["pngquant", "--force", "--output", path, str(k), source], check=True)


def images(kodak: Path | None, photos: Path | None):
    out = []
    if kodak:
        for path in sorted(kodak.glob("*.png"))[::3]:
            out.append((path.stem, Image.open(path).convert("RGB")))
    if photos:
        for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:3]:
            im = Image.open(path).convert("RGB")
            out.append((path.stem, im.resize((768, round(768 * im.height / im.width)), Image.LANCZOS)))
    return out


def main(argv=None) -> None:
    import ssimulacra2

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path)
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--ks", default="16,64,256")
    parser.add_argument("--out", type=Path, default=Path("dither_default.json"))
    args = parser.parse_args(argv)
    variants = {
        "fs1": _kmq(1.0, False),
        "default": _kmq(quantize.DEFAULT_DITHER, True),
        "fs075": _kmq(0.75, False),
        "nofs": _kmq(0.0, False),
    }
    if shutil.which("pngquant"):
        variants["pngquant"] = _pngquant
    else:
        print("pngquant is not installed: skipped", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, image in images(args.kodak, args.photos):
            original = os.path.join(work, name + ".png")
            image.save(original)
            pixels = np.asarray(image)
            for k in (int(v) for v in args.ks.split(",")):
                for variant, run in variants.items():
                    path = os.path.join(work, f"{name}-{k}-{variant}.png")
                    run(image, k, path)
                    result = np.asarray(Image.open(path).convert("RGB"))
                    rows.append({
                        "image": name, "k": k, "variant": variant, "bytes": os.path.getsize(path),
                        "ssimulacra2": float(ssimulacra2.compute_ssimulacra2(original, path)),
                        "ciede2000": ciede2000(pixels, result),
                    })
    args.out.write_text(json.dumps(rows, indent=1))
    print(summary(rows))


def summary(rows) -> str:
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines = ["| K | variant | median SSIMULACRA2 | median CIEDE2000 | bytes | SSIMULACRA2 > pngquant | CIEDE2000 < pngquant |",
             "|---|---|---|---|---|---|---|"]
    for k in sorted({r["k"] for r in rows}):
        peer = {r["image"]: r for r in rows if r["k"] == k and r["variant"] == "pngquant"}
        for variant in variants:
            sel = [r for r in rows if r["k"] == k and r["variant"] == variant]
            wins = ("", "")
            if peer and variant != "pngquant":
                wins = (f"{sum(r['ssimulacra2'] > peer[r['image']]['ssimulacra2'] for r in sel)}/{len(sel)}",
                        f"{sum(r['ciede2000'] < peer[r['image']]['ciede2000'] for r in sel)}/{len(sel)}")
            lines.append(f"| {k} | {variant} | {np.median([r['ssimulacra2'] for r in sel]):.2f} | "
                         f"{np.median([r['ciede2000'] for r in sel]):.3f} | {sum(r['bytes'] for r in sel):,} | {wins[0]} | {wins[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
