"""Long-running mutation fuzzer for the .kmq decoder.

    python benchmarks/fuzz_decoder.py [--seconds 600] [--seed 1] [--crashes DIR]

Starts from valid files, version 2 (the cm coder, optional fields) and
version 1 (real quantized photographs when a folder of images
is given with --images, plus small synthetic files of every mode and many K),
mutates them (truncate, extend, flip bits, rewrite header fields, splice two
files, with the CRC fixed up half of the time so the mutation reaches the
checks behind it), and decodes each. A case passes when decoding returns
an image of the declared shape or raises kmq's own error. Anything else is
a crash: the input is saved to --crashes and the run exits 1.

The test suite runs a few hundred seeded cases of the same idea
(tests/test_fuzz_decoder.py); this script is for deeper runs.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import struct
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

import kmq
from kmq import KmqError
from kmq._container import HEADER_SIZE, _encode_v1, encode, read_header

# (27, 4) is version 2's optional-field length (a palette byte in version 1).
HEADER_FIELDS = [(8, 1), (9, 1), (10, 2), (12, 4), (16, 4), (20, 1), (21, 1), (22, 1), (23, 4), (27, 4)]
MAX_PIXELS = 1 << 22


def seed_files(images: Path | None, rng: np.random.Generator) -> list[bytes]:
    files = []
    for mode, channels in (("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)):
        for k in (1, 2, 3, 5, 16, 17, 64, 255, 256, 257, 1000):
            h, w = int(rng.integers(1, 40)), int(rng.integers(1, 90))
            palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            labels = rng.integers(0, k, (h, (w + 3) // 4))
            labels = np.repeat(labels, 4, axis=1)[:, :w]
            labels = labels.astype(np.uint16 if k > 256 else np.uint8)
            files.append(encode(palette, labels, mode=mode, icc_profile=b"profile" if k == 16 else None))
            files.append(_encode_v1(palette, labels, mode=mode))
    if images is not None:
        for path in sorted(images.glob("*.png"))[:4]:
            crop = np.asarray(kmq._io.read_image(path).pixels)[:128, :128]
            for k in (4, 64, 300):
                c = kmq.compress(crop, k, seed=0)
                files.append(c.to_bytes())  # version 2, the cm coder
                files.append(_encode_v1(c.palette, c.labels, mode=c.mode))
    return files


def fix_crc(data: bytearray) -> bytearray:
    if len(data) >= 4:
        data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))
    return data


def mutate(data: bytes, other: bytes, rnd: random.Random) -> tuple[str, bytes]:
    buf = bytearray(data)
    kind = rnd.choice(["truncate", "extend", "flip", "field", "field", "body", "splice"])
    if kind == "truncate":
        buf = buf[: rnd.randrange(len(buf))]
    elif kind == "extend":
        buf += rnd.randbytes(rnd.randint(1, 256))
    elif kind == "flip":
        for _ in range(rnd.randint(1, 8)):
            position = rnd.randrange(len(buf))
            buf[position] ^= 1 << rnd.randrange(8)
    elif kind == "field":
        offset, size = rnd.choice(HEADER_FIELDS)
        top = (1 << (8 * size)) - 1
        value = rnd.choice([0, 1, top, top - 1, rnd.randint(0, top)])
        buf[offset : offset + size] = value.to_bytes(size, "big")
    elif kind == "body" and len(buf) > HEADER_SIZE + 4:
        for _ in range(rnd.randint(1, 16)):
            buf[rnd.randrange(HEADER_SIZE, len(buf) - 4)] = rnd.randrange(256)
    elif kind == "splice":
        cut = rnd.randrange(HEADER_SIZE, max(HEADER_SIZE + 1, min(len(buf), len(other))))
        buf = buf[:cut] + bytearray(other[cut:])
    if rnd.random() < 0.5:
        buf = fix_crc(buf)
        kind += "+crc"
    return kind, bytes(buf)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--images", type=Path, default=None, help="folder of PNGs to make real seed files from")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where to save crashing inputs")
    args = parser.parse_args(argv)

    rnd = random.Random(args.seed)
    seeds = seed_files(args.images, np.random.default_rng(args.seed))
    outcomes: collections.Counter = collections.Counter()
    messages: collections.Counter = collections.Counter()
    slowest = 0.0
    start = time.perf_counter()
    cases = 0
    while time.perf_counter() - start < args.seconds:
        base, other = rnd.choice(seeds), rnd.choice(seeds)
        kind, data = mutate(base, other, rnd)
        case_start = time.perf_counter()
        try:
            image = kmq.decompress(data, max_pixels=MAX_PIXELS)
            header = read_header(data)
            shape = (header.height, header.width) + (() if header.channels == 1 else (header.channels,))
            if image.shape != shape:
                raise AssertionError(f"decoded shape {image.shape}, header says {shape}")
            outcomes["decoded"] += 1
        except KmqError as exc:
            outcomes["refused"] += 1
            # Group messages by their wording, numbers masked.
            messages[re.sub(r"0x[0-9a-f]+|\d[\d,]*", "N", str(exc))[:90]] += 1
        except Exception:  # a crash: keep the input and stop
            args.crashes.mkdir(parents=True, exist_ok=True)
            path = args.crashes / f"crash-{cases}.kmq"
            path.write_bytes(data)
            traceback.print_exc()
            print(f"CRASH after {cases} cases ({kind}); input saved to {path}", file=sys.stderr)
            return 1
        slowest = max(slowest, time.perf_counter() - case_start)
        cases += 1
    elapsed = time.perf_counter() - start
    print(f"{cases:,} cases in {elapsed:.0f} s (seed {args.seed}, {len(seeds)} seed files): "
          f"{outcomes['decoded']:,} decoded, {outcomes['refused']:,} refused with kmq's error, 0 crashes; "
          f"slowest case {slowest * 1000:.1f} ms")
    print(f"{len(messages)} distinct refusals, most common:")
    for message, count in messages.most_common(12):
        print(f"  {count:7,}  {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
