"""Batches: -j 1 against -j 2, pngquant in a loop and in one call, a Dask
LocalCluster against -j 2, a shared palette over the set, and the peak
memory of one large image.

The image set is made from the Kodak photographs in a temporary folder:
each of the 24 images (768 x 512 or 512 x 768, 0.39 MP) in up to 9 variants
(as is, mirrored, flipped, turned half way, and five centre crops of 92..60 %
resized back to the full size), the first N of them (default 200), PNG.

Usage:
    python benchmarks/batch.py [KODAK_FOLDER] [-n 200] [-k 64] [--large 12 50 100]

Prints one line per measurement (wall-clock seconds; peak resident memory
from /usr/bin/time -v for the large images).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KODAK = ROOT.parent / "shared" / "bench" / "kodak"
KMQ = [sys.executable, "-m", "kmq"]


def make_set(kodak: Path, folder: Path, n: int) -> list[Path]:
    files = sorted(kodak.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG images in {kodak}")
    paths = []
    T = Image.Transpose
    variants = [None, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_180, 0.92, 0.84, 0.76, 0.68, 0.60]
    for v, variant in enumerate(variants):
        for path in files:
            if len(paths) == n:
                return paths
            with Image.open(path) as image:
                image = image.convert("RGB")
                if isinstance(variant, float):
                    w, h = image.size
                    cw, ch = int(w * variant), int(h * variant)
                    box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
                    image = image.crop(box).resize((w, h), Image.Resampling.LANCZOS)
                elif variant is not None:
                    image = image.transpose(variant)
                out = folder / f"{path.stem}-v{v}.png"
                image.save(out)
                paths.append(out)
    return paths


def timed(command, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def peak_rss_mb(command) -> tuple[float, float]:
    result = subprocess.run(["/usr/bin/time", "-v", *command], check=True, capture_output=True, text=True)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return rss_kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kodak", nargs="?", type=Path, default=DEFAULT_KODAK)
    parser.add_argument("-n", type=int, default=200, help="images in the set")
    parser.add_argument("-k", type=int, default=64)
    parser.add_argument("--large", type=int, nargs="*", default=[12, 50, 100], metavar="MP",
                        help="megapixel sizes for the peak-memory runs (none: skip)")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kmq-batch-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        names = make_set(args.kodak, tmp / "in", args.n)
        mp = sum(Image.open(p).width * Image.open(p).height for p in names) / len(names) / 1e6
        print(f"set: {len(names)} PNG images, {mp:.2f} MP each on average, k={args.k}, cores={os.cpu_count()}")
        k = str(args.k)
        for jobs in ("1", "2"):
            out = tmp / f"out-j{jobs}"
            seconds = timed([*KMQ, "compress", str(tmp / "in"), "-k", k, "--seed", "0", "--format", "png",
                             "-o", str(out), "-j", jobs, "-q"])
            print(f"kmq compress -j {jobs}: {seconds:.2f} s ({len(names) / seconds:.1f} images/s)")
        same = all((tmp / "out-j1" / p.name).read_bytes() == (tmp / "out-j2" / p.name).read_bytes()
                   for p in (tmp / "out-j1").iterdir())
        print(f"-j 1 and -j 2 outputs byte-identical: {same}")

        if shutil.which("pngquant"):
            out = tmp / "pq-loop"
            out.mkdir()
            start = time.perf_counter()
            for path in names:
                subprocess.run(["pngquant", k, "--nofs", "--force", "-o", str(out / path.name), str(path)], check=True)
            print(f"pngquant {k} --nofs, one call per image: {time.perf_counter() - start:.2f} s")
            seconds = timed(["pngquant", k, "--nofs", "--force", "--ext", "-pq.png", *map(str, names)])
            print(f"pngquant {k} --nofs, one call for all: {seconds:.2f} s")
            for p in (tmp / "in").glob("*-pq.png"):
                p.unlink()
        else:
            print("pngquant not installed: skipped")

        if not args.skip_dask:
            import distributed

            from kmq import batch

            start = time.perf_counter()
            result = batch.compress_many(names, k=args.k, seed=0, format="png", output_dir=tmp / "in-proc-j2",
                                         jobs=2, progress=False)
            local = time.perf_counter() - start
            assert result.exit_code == 0
            start = time.perf_counter()
            cluster = distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                               dashboard_address=":0")
            client = distributed.Client(cluster)
            client.run(lambda: __import__("kmq.batch"))  # workers import kmq, as a pool's do
            started = time.perf_counter() - start
            start = time.perf_counter()
            result = batch.compress_many(names, k=args.k, seed=0, format="png", output_dir=tmp / "dask",
                                         client=client, progress=False)
            on_dask = time.perf_counter() - start
            assert result.exit_code == 0
            client.close()
            cluster.close()
            same = all((tmp / "dask" / p.name).read_bytes() == (tmp / "out-j2" / p.name).read_bytes()
                       for p in (tmp / "dask").iterdir())
            print(f"compress_many jobs=2 (pool start included): {local:.2f} s; LocalCluster(2 workers x 1 thread): "
                  f"{on_dask:.2f} s (+{started:.2f} s to start the cluster); same bytes as -j 2: {same}")

        seconds = timed([*KMQ, "palette", str(tmp / "in"), "-k", k, "--seed", "0", "-o", str(tmp / "shared.gpl"),
                         "-j", "2", "-q"])
        from kmq.palette import read_palette

        print(f"kmq palette over {len(names)} images, -j 2: {seconds:.2f} s ({len(read_palette(tmp / 'shared.gpl'))} colours)")
        seconds = timed([*KMQ, "compress", str(tmp / "in"), "--palette", str(tmp / "shared.gpl"), "--format", "png",
                         "-o", str(tmp / "mapped"), "-j", "2", "-q"])
        print(f"kmq compress --palette over {len(names)} images, -j 2: {seconds:.2f} s")

        if args.large:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from make_large import make_large

            base = make_large(args.kodak, tmp / "large-12.png")
            for megapixels in args.large:
                path = tmp / f"large-{megapixels}.png"
                if not path.exists():
                    with Image.open(base) as image:
                        scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
                        size = (round(image.width * scale), round(image.height * scale))
                        image.resize(size, Image.Resampling.LANCZOS).save(path, compress_level=1)
                with Image.open(path) as image:
                    size = image.size
                rss, seconds = peak_rss_mb([*KMQ, "compress", str(path), "-k", "256", "-o", str(tmp / "large.kmq"),
                                            "-f", "-q"])
                print(f"{megapixels} MP ({size[0]} x {size[1]}), kmq compress -k 256 (defaults, .kmq): "
                      f"peak {rss:,.0f} MB, {seconds:.1f} s, {rss * 2**20 / (size[0] * size[1]):.1f} bytes/pixel")


if __name__ == "__main__":
    main()
