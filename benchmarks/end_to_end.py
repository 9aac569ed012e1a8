"""One command, end to end, on photographs of 2 megapixels and more: kmq
against pngquant at the same K and the same dithering.

    python benchmarks/end_to_end.py ../shared/bench/photos --widths 1920 3840 \
        --limit 3 --ks 16 64 256 --repeats 3

Each photograph of the folder (the first ``--limit``, sorted by name) is
resized to each of ``--widths`` (Lanczos; a width at or above the original's
keeps it) and written as PNG. Then, per image and K, interleaved
``--repeats`` times, in separate processes, wall time of the whole process
and its peak RSS (the launcher of ``compare.py``):

- ``kmq compress IN -k K -o OUT.png -f``: kmq's defaults (dithered, the
  report printed, so its metrics are computed); ``kmq ... -q`` (no report);
- ``pngquant K``: pngquant's default (dithered);
- ``kmq ... --nofs`` and ``pngquant --nofs K``.

Printed: medians per (width, K) over images of the per-image median time,
and the median per-image ratio kmq / pngquant for the pairs of the same
dithering, with the PNG bytes. pngquant missing: its rows are skipped and
the output says so.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import kmq_install, machine, run_process, warn_if_editable  # noqa: E402


def prepare(folder: Path, widths: list[int], limit: int, workdir: Path) -> dict[int, list[Path]]:
    sources = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    out = {}
    for width in widths:
        out[width] = []
        for src in sources:
            with Image.open(src) as im:
                im = im.convert("RGB")
                if width < im.width:
                    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
                path = workdir / f"{src.stem}-{im.width}.png"
                im.save(path, compress_level=1)
            out[width].append(path)
    return out


def tools(kmq: str, pngquant: str | None, k: int, src: Path, out: Path) -> dict[str, list[str]]:
    t = {
        "kmq": [kmq, "compress", str(src), "-k", str(k), "-o", str(out / "kmq.png"), "-f"],
        "kmq -q": [kmq, "compress", str(src), "-k", str(k), "-o", str(out / "kmq-q.png"), "-f", "-q"],
        "kmq --nofs": [kmq, "compress", str(src), "-k", str(k), "-o", str(out / "kmq-nofs.png"), "-f", "--nofs"],
    }
    if pngquant:
        t["pngquant"] = [pngquant, "-f", "-o", str(out / "pq.png"), str(k), str(src)]
        t["pngquant --nofs"] = [pngquant, "--nofs", "-f", "-o", str(out / "pq-nofs.png"), str(k), str(src)]
    return t


#: Which pngquant run each kmq run is compared with (the same dithering).
PAIRS = {"kmq": "pngquant", "kmq -q": "pngquant", "kmq --nofs": "pngquant --nofs"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--widths", type=int, nargs="+", default=[1920, 3840])
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kmq", default=shutil.which("kmq") or "kmq")
    args = parser.parse_args(argv)
    pngquant = shutil.which("pngquant")
    m = machine()
    install = kmq_install(args.kmq)
    warn_if_editable(install)
    print(f"machine: {m['model']}, {m['cores']} cores, {m['ram_gib']:.0f} GiB; kmq at {m['commit']} ({args.kmq}, {install}); "
          f"pngquant {m['versions']['pngquant'] if pngquant else 'not installed: its rows are skipped'}")
    with tempfile.TemporaryDirectory(prefix="kmq-e2e-") as tmp:
        workdir = Path(tmp)
        images = prepare(args.folder, args.widths, args.limit, workdir)
        for command in tools(args.kmq, pngquant, 64, images[args.widths[0]][0], workdir).values():
            run_process(command)  # untimed: binaries and libraries into the page cache
        print("\n| image | K | tool | time (s) | kmq / pngquant, same dithering | peak RSS MB | PNG bytes |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for width, paths in images.items():
            with Image.open(paths[0]) as im:
                size = f"{im.width} x {im.height}, {im.width * im.height / 1e6:.1f} MP"
            for k in args.ks:
                rows = {}
                for path in paths:
                    t = tools(args.kmq, pngquant, k, path, workdir)
                    runs = {name: [] for name in t}
                    for _ in range(args.repeats):
                        for name, command in t.items():
                            runs[name].append(run_process(command))
                    for name, command in t.items():
                        out = Path(command[command.index("-o") + 1])
                        row = rows.setdefault(name, {"seconds": [], "ratio": [], "rss": [], "bytes": []})
                        row["seconds"].append(statistics.median(r["seconds"] for r in runs[name]))
                        row["rss"].append(max(r["peak_rss_mb"] for r in runs[name]))
                        row["bytes"].append(out.stat().st_size)
                        peer = PAIRS.get(name)
                        if peer in runs:
                            row["ratio"].append(statistics.median(a["seconds"] / b["seconds"] for a, b in zip(runs[name], runs[peer])))
                for name, row in rows.items():
                    ratio = f"{statistics.median(row['ratio']):.2f}" if row["ratio"] else ""
                    print(f"| {len(paths)} photos, {size} | {k} | {name} | {statistics.median(row['seconds']):.3f} | {ratio} | "
                          f"{max(row['rss']):.0f} | {statistics.median(row['bytes']):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
