"""The `.kmq` coder on its worst input: uniform noise (every index equally
likely, no neighbour telling anything), where the context models learn
nothing and every candidate coder is tried for nothing.

For each K, a 2-megapixel (1414 x 1414) index map of independent uniform
labels and a random palette are encoded with ``_container.encode`` (what
``kmq compress -o x.kmq`` writes) and decoded again (checked); prints the
bytes against the raw ``log2 K`` bits, and encode and decode seconds per
megapixel (median of ``--repeats``). The issue's limit: encoding at most
0.5 s per megapixel on any input.

Usage::

    python benchmarks/coder_worst_case.py [--k 2 4 16 64 256 1024 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from kmq import _container


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4, 16, 64, 256, 1024, 4096])
    ap.add_argument("--side", type=int, default=1414)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    side = args.side
    megapixels = side * side / 1e6
    print(f"uniform noise, {side} x {side} ({megapixels:.2f} MP), median of {args.repeats}")
    print("| K | bytes | raw bits / 8 | ratio | encode s/MP | decode s/MP |")
    print("|---:|---:|---:|---:|---:|---:|")
    for k in args.k:
        palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        labels = rng.integers(0, k, (side, side)).astype(np.uint8 if k <= 256 else np.uint16)
        encode_times, decode_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            data = _container.encode(palette, labels, mode="RGB")
            encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            decoded = _container.decode(data)
            decode_times.append(time.perf_counter() - start)
        assert np.array_equal(decoded.labels, labels) and np.array_equal(decoded.palette, palette)
        raw = side * side * np.log2(k) / 8
        print(f"| {k} | {len(data):,} | {raw:,.0f} | {len(data) / raw:.4f} | "
              f"{statistics.median(encode_times) / megapixels:.3f} | {statistics.median(decode_times) / megapixels:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
