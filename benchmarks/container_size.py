"""Sizes and times of the palette formats: .kmq v1 and v2, kmq's PNG, peers.

For every image in FOLDER and every K the image is quantized once by kmq
(``kmq.compress(path, K, seed=0, dither=0)``: k-means, undithered as the
``pngquant --nofs`` peer, then the palette order chosen for compression), and that same quantized image is written as

* ``.kmq`` version 1 (``_container._encode_v1``: best of zlib/bz2/LZMA2)
  and version 2 (``_container.encode``: the cm coder);
* kmq's indexed PNG at each effort 0..3 (3 needs pyoxipng);
* oxipng's strongest preset (``oxipng -o max``, or pyoxipng's
  ``optimize_from_memory(level=6)`` when there is no oxipng command) run on
  Pillow's ``optimize=True`` PNG of the image;
* lossless WebP (Pillow, method 4, quality 75: cwebp -lossless's default
  effort; method 6 at quality 100 took ~40x longer) and JPEG XL lossless (``cjxl -d 0 -e 7``
  and ``-e 9``, one thread) of the rebuilt RGB image;

and, for reference, ``pngquant --nofs K`` of the *source* image (pngquant
quantizes by itself, so its image differs). Every coded file is decoded
again (and the kmq and PNG ones checked pixel for pixel); encode and
decode times are wall-clock seconds (``djxl`` and ``pngquant`` include
process start-up). A peer that is not installed is skipped and named.

Usage::

    python benchmarks/container_size.py [FOLDER] [--k 16 64 256] [--jxl 7 9]
        [--resize 768] [--limit N] [--json out.json]

FOLDER defaults to ``shared/bench/kodak`` beside the repository. Prints
Markdown tables (bytes per image and in total; total times; how often
each target holds).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

_REPO = Path(__file__).resolve().parents[1]
try:
    import kmq
    from kmq import _container, _io
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(_REPO / "src"))
    import kmq
    from kmq import _container, _io

EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm"}


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def pillow_png(palette: np.ndarray, labels: np.ndarray) -> bytes:
    im = Image.fromarray(labels.astype(np.uint8), "P")
    im.putpalette(palette.tobytes())
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class Peers:
    """The external tools found on this machine; missing ones are named."""

    def __init__(self, jxl_efforts: list[int]):
        self.missing: list[str] = []
        self.pngquant = shutil.which("pngquant")
        if not self.pngquant:
            self.missing.append("pngquant (command not found)")
        self.oxipng_cli = shutil.which("oxipng")
        try:
            import oxipng  # noqa: F401

            self.pyoxipng = True
        except ImportError:
            self.pyoxipng = False
        if not self.oxipng_cli and not self.pyoxipng:
            self.missing.append("oxipng (neither the command nor pyoxipng)")
        self.oxipng_name = "oxipng -o max" if self.oxipng_cli else "pyoxipng level=6 (= -o max)"
        self.cjxl, self.djxl = shutil.which("cjxl"), shutil.which("djxl")
        self.jxl_efforts = jxl_efforts if self.cjxl and self.djxl else []
        if jxl_efforts and not self.jxl_efforts:
            self.missing.append("JPEG XL (cjxl/djxl not found: apt-get install libjxl-tools)")
        self.webp = _webp_ok()
        if not self.webp:
            self.missing.append("lossless WebP (Pillow built without WebP)")

    def oxipng(self, png: bytes, tmp: Path) -> tuple[bytes, float]:
        if self.oxipng_cli:
            src = tmp / "ox.png"
            src.write_bytes(png)
            t0 = time.perf_counter()
            subprocess.run([self.oxipng_cli, "-o", "max", "-q", "--out", str(tmp / "ox2.png"), str(src)], check=True)
            return (tmp / "ox2.png").read_bytes(), time.perf_counter() - t0
        import oxipng

        return timed(oxipng.optimize_from_memory, png, level=6)

    def pngquant_file(self, source: Path, k: int, tmp: Path) -> tuple[int, float]:
        out = tmp / "pq.png"
        t0 = time.perf_counter()
        # --strip: no colour profile, as in the other files.
        subprocess.run([self.pngquant, "--nofs", "--strip", "-f", "-o", str(out), str(k), str(source)], check=True)
        return out.stat().st_size, time.perf_counter() - t0

    def jxl(self, rgb_png: Path, effort: int, tmp: Path, expect: np.ndarray) -> tuple[int, float, float]:
        out, back = tmp / f"e{effort}.jxl", tmp / f"e{effort}.png"
        t0 = time.perf_counter()
        subprocess.run([self.cjxl, "-d", "0", "-e", str(effort), "--num_threads=1", str(rgb_png), str(out)], check=True, capture_output=True)
        t1 = time.perf_counter()
        subprocess.run([self.djxl, "--num_threads=1", str(out), str(back)], check=True, capture_output=True)
        t2 = time.perf_counter()
        with Image.open(back) as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), expect), "cjxl -d 0 was not lossless"
        return out.stat().st_size, t1 - t0, t2 - t1


def _webp_ok() -> bool:
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), "WEBP", lossless=True)
        return True
    except Exception:
        return False


def measure(path: Path, k: int, peers: Peers, tmp: Path, resize: int | None) -> dict:
    source = path
    if resize:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = resize / max(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
            source = tmp / "source.png"
            im.save(source)
    c = kmq.compress(source, k, seed=0, dither=0)
    palette, labels, rgb = c.palette, c.labels, c.reconstruct()
    r: dict = {"image": path.name, "k": k, "k_used": int(len(palette)), "bytes": {}, "enc": {}, "dec": {}}

    def put(name, data_len, enc, dec):
        r["bytes"][name], r["enc"][name], r["dec"][name] = data_len, enc, dec

    v1, t = timed(_container._encode_v1, palette, labels, mode=c.mode)
    back, td = timed(_container.decode, v1)
    assert np.array_equal(back.labels, labels)
    put("kmq v1", len(v1), t, td)
    v2, t = timed(_container.encode, palette, labels, mode=c.mode)
    back, td = timed(_container.decode, v2)
    assert np.array_equal(back.labels, labels) and np.array_equal(back.palette, palette)
    put("kmq v2", len(v2), t, td)
    r["v2_coder"] = _container.read_header(v2).coder
    for effort in _io.PNG_EFFORTS:
        if effort == _io.MAX_PNG_EFFORT and not peers.pyoxipng:
            continue
        # strip: no colour profile, as in every other file here (a photograph's
        # ICC profile would add its bytes to kmq's PNG alone).
        png, t = timed(c.to_bytes, "png", effort=effort, strip=True)
        pix, td = timed(decode_png, png)
        assert np.array_equal(pix, rgb)
        put(f"PNG -O{effort}", len(png), t, td)
    if peers.pyoxipng or peers.oxipng_cli:
        ref = pillow_png(palette, labels)
        png, t = peers.oxipng(ref, tmp)
        pix, td = timed(decode_png, png)
        assert np.array_equal(pix, rgb)
        put("oxipng", len(png), t, td)
    if peers.pngquant:
        size, t = peers.pngquant_file(source, k, tmp)
        put("pngquant", size, t, None)
    if peers.webp:
        buf = io.BytesIO()
        _, t = timed(Image.fromarray(rgb).save, buf, "WEBP", lossless=True, quality=75, method=4)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            pix, td = timed(lambda: np.asarray(im.convert("RGB")))
        assert np.array_equal(pix, rgb)
        put("WebP", len(buf.getvalue()), t, td)
    if peers.jxl_efforts:
        rgb_png = tmp / "rgb.png"
        Image.fromarray(rgb).save(rgb_png, compress_level=1)
        for effort in peers.jxl_efforts:
            size, t, td = peers.jxl(rgb_png, effort, tmp, rgb)
            put(f"JXL e{effort}", size, t, td)
    return r


def report(results: list[dict], peers: Peers, megapixels: dict) -> None:
    for k in sorted({r["k"] for r in results}):
        rows = [r for r in results if r["k"] == k]
        names = list(rows[0]["bytes"])
        print(f"\n### K = {k}\n")
        print("| image | " + " | ".join(names) + " |")
        print("| --- |" + " ---: |" * len(names))
        for r in rows:
            print(f"| {r['image']} | " + " | ".join(f"{r['bytes'][n]:,}" for n in names) + " |")
        tot = {n: sum(r["bytes"][n] for r in rows) for n in names}
        print("| **total** | " + " | ".join(f"**{tot[n]:,}**" for n in names) + " |")
        mp = sum(megapixels[r["image"]] for r in rows)
        print(f"\nTotal seconds over the {len(rows)} images ({mp:.1f} MP), encode / decode:\n")
        print("| " + " | ".join(names) + " |")
        print("|" + " ---: |" * len(names))
        cells = []
        for n in names:
            enc = sum(r["enc"][n] for r in rows)
            dec = [r["dec"][n] for r in rows if r["dec"][n] is not None]
            cells.append(f"{enc:.1f} / {sum(dec):.1f}" if dec else f"{enc:.1f} / –")
        print("| " + " | ".join(cells) + " |")
        worst_v2 = max(r["enc"]["kmq v2"] / megapixels[r["image"]] for r in rows)
        print(f"\nkmq v2 encoding, slowest image: {worst_v2:.2f} s per megapixel.")
        print()

        def count(a, b):
            if a in names and b in names:
                wins = sum(r["bytes"][a] <= r["bytes"][b] for r in rows)
                ratio = tot[a] / tot[b]
                print(f"- {a} no larger than {b}: {wins}/{len(rows)} images (total {ratio:.3f}x)")

        for peer in [f"JXL e{e}" for e in peers.jxl_efforts] + ["WebP", "kmq v1"]:
            count("kmq v2", peer)
        count(f"PNG -O{_io.DEFAULT_PNG_EFFORT}", "pngquant")
        count(f"PNG -O{_io.MAX_PNG_EFFORT}", "oxipng")
        count(f"PNG -O{_io.MAX_PNG_EFFORT}", "pngquant")
    if peers.missing:
        print("\nSkipped (not installed): " + "; ".join(peers.missing))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", type=Path, default=_REPO.parent / "shared" / "bench" / "kodak")
    ap.add_argument("--k", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--jxl", type=int, nargs="*", default=[7, 9], help="cjxl efforts to run (none: --jxl)")
    ap.add_argument("--resize", type=int, default=None, help="shrink each image to this longest side first")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, help="only print the tables of these --json files")
    args = ap.parse_args(argv)
    if args.merge:
        results = [r for f in args.merge for r in json.loads(f.read_text())]
        peers = Peers(args.jxl)
        megapixels = {}
        for r in results:
            path = args.folder / r["image"]
            with Image.open(path) as im:
                megapixels[r["image"]] = im.width * im.height / 1e6
        report(results, peers, megapixels)
        return 0
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in EXTS)[: args.limit]
    if not paths:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 1
    peers = Peers(args.jxl)
    results, megapixels = [], {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for k in args.k:
            for p in paths:
                r = measure(p, k, peers, tmp, args.resize)
                with Image.open(tmp / "source.png" if args.resize else p) as im:
                    megapixels[p.name] = im.width * im.height / 1e6
                results.append(r)
                print(f"{p.name} K={k}: " + ", ".join(f"{n} {v:,}" for n, v in r["bytes"].items()), file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1))
    print(f"Machine: {os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f}.")
    report(results, peers, megapixels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
