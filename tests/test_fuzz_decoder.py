"""Property-based fuzzing of the .kmq decoder (Hypothesis, seeded).

Valid files (version 2, coded by the cm coder or stored, with and without
an optional field, and version 1) of every mode, several K and both index
layouts are mutated —
truncated, extended, bytes flipped, header fields rewritten — with the CRC
either left alone or fixed up so the mutation reaches the checks behind it.
Decoding must then either return an image of the shape its header declares
or raise kmq's own error; anything else (another exception, a hang, a
memory blow-up) is a bug. ``derandomize=True`` makes the run the same in
every CI; the deadline is a hang guard far above the milliseconds a case
takes, not a speed target. benchmarks/fuzz_decoder.py runs the same idea
for longer.
"""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmq
from kmq import KmqError
from kmq._container import HEADER_SIZE, _encode_v1, encode, read_header

# (offset, size) of each header field after the magic (FORMAT.md).
# (27, 4) is version 2's optional-field length (a palette byte in version 1).
HEADER_FIELDS = [(8, 1), (9, 1), (10, 2), (12, 4), (16, 4), (20, 1), (21, 1), (22, 1), (23, 4), (27, 4)]
# Keep a runaway decode bounded while fuzzing: no case may claim more.
FUZZ_MAX_PIXELS = 1 << 20


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(2024)
    files = []
    for mode, channels in (("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)):
        for k, (h, w) in ((1, (3, 5)), (2, (7, 9)), (3, (3, 2)), (16, (9, 13)), (17, (4, 31)), (256, (16, 16)), (300, (5, 70))):
            palette = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            if k > 2 and w > 8:  # runs compress: exercises the entropy coders
                labels = np.repeat(rng.integers(0, k, (h, (w + 3) // 4)), 4, axis=1)[:, :w]
            else:
                labels = rng.integers(0, k, (h, w))
            labels = labels.astype(np.uint16 if k > 256 else np.uint8)
            files.append(encode(palette, labels, mode=mode))  # version 2, mostly the cm coder
            if mode in ("L", "RGB"):
                files.append(_encode_v1(palette, labels, mode=mode))
    # Version 2 with an optional field (an ICC profile).
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    labels = np.repeat(rng.integers(0, 16, (9, 4)), 4, axis=1)
    files.append(encode(palette, labels, mode="RGB", icc_profile=bytes(rng.integers(0, 256, 40, dtype=np.uint8))))
    return files


SEEDS = _seed_files()


def _fix_crc(data: bytearray) -> bytearray:
    if len(data) >= 4:
        data[-4:] = struct.pack(">I", zlib.crc32(bytes(data[:-4])))
    return data


@st.composite
def mutated_files(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    kind = draw(st.sampled_from(["truncate", "extend", "flip", "field", "field", "payload"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
    elif kind == "field":
        offset, size = draw(st.sampled_from(HEADER_FIELDS))
        value = draw(st.one_of(st.integers(0, (1 << (8 * size)) - 1), st.sampled_from([0, 1, (1 << (8 * size)) - 1])))
        data[offset : offset + size] = value.to_bytes(size, "big")
    else:  # rewrite bytes inside the palette and payload
        if len(data) > HEADER_SIZE + 4:
            position = draw(st.integers(HEADER_SIZE, len(data) - 5))
            data[position] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = _fix_crc(data)
    return bytes(data)


@settings(
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated_files())
def test_decoder_returns_the_declared_image_or_raises_kmq_error(data):
    try:
        image = kmq.decompress(data, max_pixels=FUZZ_MAX_PIXELS)
    except KmqError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    header = read_header(data)
    expected = (header.height, header.width) if header.channels == 1 else (header.height, header.width, header.channels)
    assert image.shape == expected
    assert image.dtype == np.uint8


@pytest.mark.parametrize("data", SEEDS[:: len(SEEDS) // 6])
def test_seed_files_are_valid(data):
    header = read_header(data)
    assert kmq.load(data).labels.shape == (header.height, header.width)


def test_every_truncation_and_every_single_byte_flip_of_one_file():
    """Exhaustive over one small file: no mutation escapes as a foreign error."""
    data = SEEDS[-1]  # version 2, cm coder, RGB, K=16, 9x16, with an ICC profile
    assert read_header(data).coder == "cm" and read_header(data).fields_length == 48
    outcomes = {"decoded": 0, "refused": 0}
    variants = [data[:cut] for cut in range(len(data))]
    variants += [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in range(len(data))]
    variants += [bytes(_fix_crc(bytearray(v))) for v in variants[len(data) :]]
    for variant in variants:
        try:
            kmq.decompress(variant, max_pixels=FUZZ_MAX_PIXELS)
            outcomes["decoded"] += 1
        except KmqError:
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == len(variants)
    # Without a CRC fix-up no flip gets through; truncations never do.
    assert outcomes["refused"] >= 2 * len(data)
