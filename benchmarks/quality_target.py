"""``--quality MIN-MAX`` end to end, as build pipelines call it: kmq against
pngquant, one process per image each, default options otherwise.

For each image (the groups of ``perceptual.py``: Kodak photographs, modern
photographs resized to 768 px wide, images with alpha) both tools write an
indexed PNG with ``--quality MIN-MAX``; a tool that cannot reach MIN writes
nothing and exits 99, which is counted, not scored. Each file is scored as
``perceptual.py`` scores (SSIMULACRA2, mean CIEDE2000; images with alpha
on what is seen). Prints, per group, the colours each tool chose, the
bytes, the scores, the wall time of the command and how often kmq's file
is smaller and its SSIMULACRA2 higher.

    python benchmarks/quality_target.py --kodak ../shared/bench/kodak \\
        --photos ../shared/bench/photos --every 3 --quality 65-80

Needs the ``bench`` extra and pngquant on PATH (skipped, and said, if not).
The kmq command is this Python's (``python -m kmq``); time a wheel installed
as users install it (``pip install '.[bench]'`` in a fresh venv), not an
editable install, whose import checks the build (the script warns).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import kmq_install, machine, warn_if_editable  # noqa: E402
from perceptual import image_set, score  # noqa: E402

EXIT_QUALITY = 99


def _run(cmd) -> tuple[int, float]:
    started = time.perf_counter()
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return code, time.perf_counter() - started


def _colours(path: str) -> int:
    with Image.open(path) as image:
        return len(image.getpalette() or []) // 3


def run_tools(source: str, work: str, name: str, quality: str, tools) -> dict:
    commands = {
        "kmq": lambda out: [sys.executable, "-m", "kmq", "compress", source, "--quality", quality, "-q", "-f", "-o", out],
        "pngquant": lambda out: ["pngquant", "--force", "--quality", quality, "--output", out, source],
    }
    row = {}
    for tool in tools:
        out = os.path.join(work, f"{name}-{tool}.png")
        if os.path.exists(out):
            os.remove(out)
        code, seconds = _run(commands[tool](out))
        if code == EXIT_QUALITY:
            row[tool] = {"reached": False, "seconds": seconds}
            continue
        if code != 0:
            raise SystemExit(f"{tool} failed on {name} (exit {code})")
        row[tool] = {"reached": True, "seconds": seconds, "bytes": os.path.getsize(out), "colours": _colours(out)}
        row[tool]["ssimulacra2"], row[tool]["ciede2000"], _ = score(source, out, "A" in Image.open(source).mode)
    return row


def summarise(rows, tools) -> str:
    lines = [
        "| images | tool | reached MIN | median colours | total bytes | median SSIMULACRA2 | median CIEDE2000 | median time (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    groups = sorted({r["group"] for r in rows}) + ["all"]
    for group in groups:
        sel = [r for r in rows if group == "all" or r["group"] == group]
        both = [r for r in sel if all(r[t]["reached"] for t in tools)]
        for tool in tools:
            reached = [r[tool] for r in sel if r[tool]["reached"]]
            med = lambda key, rs=both, t=tool: statistics.median(r[t][key] for r in rs) if rs else float("nan")
            lines.append(
                f"| {group} | {tool} | {len(reached)}/{len(sel)} | {med('colours'):.0f} | "
                f"{sum(r[tool]['bytes'] for r in both):,} | {med('ssimulacra2'):.2f} | {med('ciede2000'):.3f} | "
                f"{statistics.median(r[tool]['seconds'] for r in sel):.3f} |"
            )
        if len(tools) == 2 and both:
            smaller = sum(r["kmq"]["bytes"] < r["pngquant"]["bytes"] for r in both)
            better = sum(r["kmq"]["ssimulacra2"] > r["pngquant"]["ssimulacra2"] for r in both)
            lines.append(f"| {group} | kmq vs pngquant, where both reached MIN ({len(both)}) | smaller {smaller}, "
                         f"higher SSIMULACRA2 {better} | | | | | |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path)
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--every", type=int, default=1, help="take every n-th image of each folder")
    parser.add_argument("--groups", default="kodak,photos,alpha")
    parser.add_argument("--quality", default="65-80", help="MIN-MAX, passed to both tools")
    parser.add_argument("--out", type=Path, help="write the rows as JSON")
    args = parser.parse_args(argv)
    tools = ["kmq"]
    if shutil.which("pngquant"):
        tools.append("pngquant")
    else:
        print("pngquant not found on PATH: skipped", file=sys.stderr)
    install = kmq_install()
    warn_if_editable(install)
    groups = set(args.groups.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for group, name, image in image_set(args.kodak, args.photos, args.every, groups):
            if group not in groups:
                continue
            source = os.path.join(work, f"{name}.png")
            image.save(source)
            row = {"group": group, "image": name, **run_tools(source, work, name, args.quality, tools)}
            rows.append(row)
            print(name, {t: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row[t].items()} for t in tools},
                  file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    m = machine()
    print(f"--quality {args.quality}; machine: {m['model']}, {m['cores']} cores; kmq at {m['commit']} ({install}); "
          f"pngquant {m['versions']['pngquant']}\n")
    print(summarise(rows, tools))


if __name__ == "__main__":
    main()
