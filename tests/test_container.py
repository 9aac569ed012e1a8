"""Tests of the .kmq container (src/kmq/_container.py, spec src/kmq/FORMAT.md).

Files are also built here independently of the encoder (``build``), straight
from the spec, so the decoder is checked against the format and not only
against its own writer.
"""

from __future__ import annotations

import bz2
import json
import lzma
import re
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from kmq import _container as C
from kmq._errors import DecodeError, KmqError, LimitError, UsageError

MAGIC = b"\x89KMQ\r\n\x1a\n"
MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
FORMAT_MD = Path(C.__file__).with_name("FORMAT.md")


# --------------------------------------------------------------------------
# An independent writer, from FORMAT.md
# --------------------------------------------------------------------------


def bits_for(k: int) -> int:
    b = 0
    while (1 << b) < k:
        b += 1
    return b


def pack_reference(labels: np.ndarray, b: int) -> bytes:
    """Bit-pack with a string of '0'/'1' per row: MSB first, rows padded."""
    out = bytearray()
    for row in labels.tolist():
        s = "".join(format(v, f"0{b}b") for v in row) if b else ""
        s += "0" * (-len(s) % 8)
        out += bytes(int(s[i : i + 8], 2) for i in range(0, len(s), 8))
    return bytes(out)


def unpacked_reference(labels: np.ndarray, b: int) -> bytes:
    if b == 0:
        return b""
    return b"".join(
        struct.pack(">B" if b <= 8 else ">H", v) for v in labels.ravel().tolist()
    )


def code(coder: int, raw: bytes) -> bytes:
    if coder == 0:
        return raw
    if coder == 1:
        return zlib.compress(raw)
    if coder == 2:
        return bz2.compress(raw)
    return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])


def build(
    *,
    width: int = 3,
    height: int = 2,
    channels: int = 3,
    k: int = 3,
    bits: int | None = None,
    coder: int = 0,
    flags: int = 1,
    payload: bytes | None = None,
    payload_length: int | None = None,
    palette: bytes | None = None,
    version: int = 1,
    magic: bytes = MAGIC,
    crc: int | None = None,
    labels: np.ndarray | None = None,
) -> bytes:
    """A .kmq file from explicit field values (defaults: a valid 3x2 RGB file)."""
    b = bits_for(k) if bits is None else bits
    if payload is None:
        if labels is None:
            labels = (np.arange(width * height) % k).reshape(height, width)
        raw = pack_reference(labels, b) if flags & 1 else unpacked_reference(labels, b)
        payload = code(coder, raw)
    if palette is None:
        palette = bytes((i * 37) % 256 for i in range(k * channels))
    head = struct.pack(
        ">8sBBHIIBBBI",
        magic,
        version,
        channels,
        (k - 1) & 0xFFFF,
        width,
        height,
        b,
        coder,
        flags,
        len(payload) if payload_length is None else payload_length,
    )
    body = head + palette + payload
    return body + struct.pack(">I", zlib.crc32(body) if crc is None else crc)


def smooth_labels(h: int, w: int, k: int, seed: int = 0) -> np.ndarray:
    """Blobby labels with spatial coherence (compressible, like real images)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    f = np.sin(x / 7.0 + rng.uniform(0, 6)) + np.cos(y / 5.0 + rng.uniform(0, 6))
    f += 0.3 * np.sin((x + y) / 3.0)
    lab = np.floor((f - f.min()) / (np.ptp(f) + 1e-9) * k).astype(np.int64)
    return np.clip(lab, 0, k - 1)


def roundtrip(palette: np.ndarray, labels: np.ndarray, mode: str) -> C.Container:
    data = C.encode(palette, labels, mode=mode)
    out = C.decode(data)
    assert out.mode == mode
    assert out.palette.dtype == np.uint8
    np.testing.assert_array_equal(out.palette, palette)
    k = palette.shape[0]
    assert out.labels.dtype == (np.uint8 if k <= 256 else np.uint16)
    np.testing.assert_array_equal(out.labels, labels)
    assert (out.height, out.width, out.k, out.channels) == (*labels.shape, *palette.shape)
    return out


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

KS = [1, 2, 3, 4, 15, 16, 17, 255, 256, 257, 65536]
SHAPES = [(1, 1), (1, 9), (5, 3), (7, 13), (16, 31)]


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("mode", list(MODES))
def test_roundtrip_random(k: int, mode: str) -> None:
    rng = np.random.default_rng(k * 10 + MODES[mode])
    palette = rng.integers(0, 256, (k, MODES[mode]), dtype=np.uint8)
    for h, w in SHAPES:
        labels = rng.integers(0, k, (h, w)).astype(np.uint8 if k <= 256 else np.uint16)
        # make the extreme indices appear
        labels.flat[0] = k - 1
        labels.flat[-1] = 0 if labels.size > 1 else labels.flat[-1]
        roundtrip(palette, labels, mode)


@pytest.mark.parametrize("k", [2, 3, 16, 17, 64, 255, 256, 257, 1000])
def test_roundtrip_smooth_uses_compression(k: int) -> None:
    palette = np.random.default_rng(k).integers(0, 256, (k, 3), dtype=np.uint8)
    labels = smooth_labels(61, 97, k, seed=k)  # odd width: padded rows
    roundtrip(palette, labels, "RGB")
    data = C.encode(palette, labels, mode="RGB")
    hdr = C.read_header(data)
    assert hdr.coder != "stored"
    assert hdr.payload_length < hdr.index_length


def test_roundtrip_k65536_all_indices() -> None:
    palette = np.random.default_rng(1).integers(0, 256, (65536, 1), dtype=np.uint8)
    labels = np.random.default_rng(2).permutation(65536).reshape(256, 256).astype(np.uint16)
    out = roundtrip(palette, labels, "L")
    assert C.read_header(C.encode(palette, labels, mode="L")).bits_per_index == 16
    assert out.labels.max() == 65535


def test_k1_has_no_index_data() -> None:
    data = C.encode(np.array([[10, 20, 30]], np.uint8), np.zeros((5, 7), np.uint8), mode="RGB")
    hdr = C.read_header(data)
    assert (hdr.version, hdr.bits_per_index, hdr.payload_length, hdr.coder) == (2, 0, 0, "stored")
    assert len(data) == 31 + 3 + 0 + 4
    out = C.decode(data)
    np.testing.assert_array_equal(out.labels, np.zeros((5, 7), np.uint8))
    np.testing.assert_array_equal(out.pixels(), np.full((5, 7, 3), [10, 20, 30], np.uint8))


def test_input_dtypes_accepted() -> None:
    labels = np.array([[0, 1], [2, 0]], dtype=np.int64)
    out = roundtrip(np.array([[1], [2], [3]], np.uint8), labels, "L")
    assert out.labels.dtype == np.uint8
    # integer palette of another dtype, values in range
    out = C.decode(C.encode(np.array([[0, 255], [7, 9]], np.int32), [[0, 1]], mode="LA"))
    np.testing.assert_array_equal(out.palette, [[0, 255], [7, 9]])
    # non-contiguous labels
    big = smooth_labels(20, 40, 5)
    roundtrip(np.zeros((5, 1), np.uint8), big[:, ::3], "L")


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = C.encode(np.zeros((2, 3), np.uint8), np.array([[0, 1, 1]]), mode="RGB")
    for buf in (bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(C.decode(buf).labels, [[0, 1, 1]])


def test_encoder_keeps_smallest_candidate() -> None:
    labels = smooth_labels(40, 50, 16)
    data = C._encode_v1(np.zeros((16, 3), np.uint8), labels, mode="RGB")
    cands = C._candidates(labels, 4)
    assert {(c, p) for c, p, _ in cands} == {
        (0, True), (1, True), (2, True), (3, True), (0, False), (2, False), (3, False)
    }
    assert C.read_header(data).payload_length == min(len(p) for _, _, p in cands)


def test_big_streams_try_lzma2_on_one_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "_SAMPLE_ABOVE", 1000)
    monkeypatch.setattr(C, "_SAMPLE_BYTES", 500)
    labels = smooth_labels(40, 50, 16)
    cands = C._candidates(labels, 4)
    assert sum(c == 3 for c, _, _ in cands) == 1
    assert sum(c == 2 for c, _, _ in cands) == 2
    roundtrip(np.zeros((16, 3), np.uint8), labels, "RGB")


# --------------------------------------------------------------------------
# The layouts and coders, checked against the independent writer
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 5, 9, 16, 33, 64, 128, 129, 256, 257, 513, 4097, 32769, 65536])
@pytest.mark.parametrize("flags", [0, 1])
def test_decoder_reads_spec_files(k: int, flags: int) -> None:
    b = bits_for(k)
    h, w = 3, 11
    labels = np.random.default_rng(k).integers(0, k, (h, w))
    labels[0, 0] = k - 1
    for coder in (0, 1, 2, 3):
        data = build(width=w, height=h, channels=1, k=k, coder=coder, flags=flags, labels=labels)
        out = C.decode(data)
        np.testing.assert_array_equal(out.labels, labels)
        hdr = C.read_header(data)
        assert hdr.packed is bool(flags) and hdr.coder_id == coder and hdr.bits_per_index == b


@pytest.mark.parametrize("b", range(1, 17))
def test_pack_matches_reference(b: int) -> None:
    k = 1 << b
    rng = np.random.default_rng(b)
    for w in (1, 2, 3, 7, 8, 9, 17):
        labels = rng.integers(0, k, (4, w))
        assert C._pack(labels, b) == pack_reference(labels, b)
        assert C._unpacked(labels, b) == unpacked_reference(labels, b)
        np.testing.assert_array_equal(C._unpack(pack_reference(labels, b), w, 4, b, True), labels)


def test_padding_bits_are_ignored() -> None:
    # 3 px x 2 bits = 6 bits: the low 2 bits of each row byte are padding
    data = build(payload=b"\x1b\x93")  # 0x18 | 0x03, 0x90 | 0x03
    np.testing.assert_array_equal(C.decode(data).labels, [[0, 1, 2], [2, 1, 0]])


def test_lzma_dictionary_rule() -> None:
    # A writer using a dictionary smaller than the data decodes fine.
    labels = smooth_labels(64, 256, 200)
    raw = pack_reference(labels, 8)
    payload = lzma.compress(
        raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 4096}]
    )
    data = build(width=256, height=64, channels=1, k=200, coder=3, payload=payload)
    np.testing.assert_array_equal(C.decode(data).labels, labels)


# --------------------------------------------------------------------------
# The worked example in FORMAT.md
# --------------------------------------------------------------------------


def test_worked_example_bytes() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    block = text.split("## Worked example", 1)[1].split("```", 2)[1]
    expected = bytearray()
    for line in block.strip().splitlines():
        m = re.match(r"([0-9a-f]{2}): (.*)", line)
        assert m, line
        assert int(m.group(1), 16) == len(expected), line  # offsets are right
        for tok in m.group(2).split():
            if not re.fullmatch(r"[0-9a-f]{2}", tok):
                break
            expected.append(int(tok, 16))
    palette = np.array([[0, 0, 0], [255, 128, 0], [0, 128, 255]], np.uint8)
    labels = np.array([[0, 1, 2], [2, 1, 0]])
    data = C._encode_v1(palette, labels, mode="RGB")
    assert data == bytes(expected)
    assert len(data) == 42
    assert data == build(palette=palette.tobytes(), labels=labels)  # independent writer
    hdr = C.read_header(data)
    assert hdr.as_dict() == {
        "version": 1, "width": 3, "height": 2, "channels": 3, "mode": "RGB", "k": 3,
        "bits_per_index": 2, "coder_id": 0, "coder": "stored", "packed": True,
        "payload_length": 2, "file_size": 42, "fields_length": 0, "pixels": 6, "header_length": 27,
        "palette_length": 9, "index_length": 2,
    }
    json.dumps(hdr.as_dict())


# --------------------------------------------------------------------------
# Every header field, each with its own message
# --------------------------------------------------------------------------

VALID = build()


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", r"not a \.kmq file: it is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), r"not a \.kmq file: magic bytes are b'\\x89PNG.*expected b'\\x89KMQ.*PNG image"),
        (b"hello world, this is text" * 3, r"not a \.kmq file: magic bytes are b'hello wo'"),
        (b"\x89KMQ\n\x1a\n" + VALID[8:], r"text-mode transfer"),
        (MAGIC[:5], r"truncated \.kmq file: only 5 bytes, the header alone is 27"),
        (VALID[:20], r"truncated \.kmq file: only 20 bytes, the header alone is 27"),
        (build(version=7), r"unsupported \.kmq version 7 \(this kmq reads versions 1 and 2\)"),
        (build(version=0), r"unsupported \.kmq version 0 \(this kmq reads versions 1 and 2\)"),
        (build(channels=0, palette=b""), r"channels is 0, expected 1 \(L\), 2 \(LA\), 3 \(RGB\) or 4 \(RGBA\)"),
        (build(channels=5), r"channels is 5, expected 1 \(L\)"),
        (build(width=0, payload=b""), r"image size is 0x2, width and height must each be at least 1"),
        (build(height=0, payload=b""), r"image size is 3x0, width and height must each be at least 1"),
        (build(bits=3), r"bits per index is 3, but K = 3 colours need exactly 2"),
        (build(k=1, bits=1, payload=b"\x00\x00"), r"bits per index is 1, but K = 1 colours need exactly 0"),
        (build(coder=4, payload=b"\x18\x90"), r"unknown coder id 4 for version 1 \(known: 0 stored, 1 zlib, 2 bz2, 3 lzma2\)"),
        (build(flags=0x81, payload=b"\x18\x90"), r"flags byte is 0x81; reserved bits 0x80 must be zero"),
        (build(payload=b"\x18\x90\x00"), r"stored \(uncoded\) payload is 3 bytes, but 3x2 2-bit packed indices take exactly 2"),
        (build(flags=0, payload=b"\x00" * 5), r"payload is 5 bytes, but 3x2 unpacked indices take exactly 6"),
        (VALID[:30], r"truncated \.kmq file: header says 3 x 3 = 9 palette bytes, only 3 remain"),
        (VALID[:37], r"truncated \.kmq file: header says 2 payload bytes, only 1 remain"),
        (VALID[:40], r"truncated \.kmq file: the final 4-byte CRC-32 is missing \(only 2 bytes after the payload\)"),
        (VALID + b"\x00\x00\x00", r"corrupt \.kmq file: 3 unexpected bytes after the CRC-32 \(the header accounts for 42 bytes, the file has 45\)"),
        (build(crc=0x12345678), r"corrupt \.kmq file: CRC-32 mismatch \(stored 0x12345678, computed 0x[0-9a-f]{8}\)"),
    ],
)
def test_specific_messages(data: bytes, pattern: str) -> None:
    with pytest.raises(DecodeError, match=pattern):
        C.decode(data)


def test_crc_covers_every_byte() -> None:
    for i in range(len(VALID) - 4):
        bad = bytearray(VALID)
        bad[i] ^= 0x40
        with pytest.raises((DecodeError, LimitError)):  # a width can grow past the limit
            C.decode(bytes(bad))
    bad = bytearray(VALID)
    bad[28] ^= 1  # a palette byte: only the CRC can tell
    with pytest.raises(DecodeError, match="CRC-32 mismatch"):
        C.decode(bytes(bad))


def test_read_header_checks_fields_but_not_crc() -> None:
    hdr = C.read_header(build(crc=0))
    assert (hdr.width, hdr.height, hdr.k, hdr.mode) == (3, 2, 3, "RGB")
    with pytest.raises(DecodeError, match="unsupported .kmq version 3"):
        C.read_header(build(version=3))
    with pytest.raises(DecodeError, match="unexpected bytes after the CRC-32"):
        C.read_header(VALID + b"!")


def test_truncation_at_every_offset() -> None:
    palette = np.random.default_rng(0).integers(0, 256, (5, 4), dtype=np.uint8)
    data = C.encode(palette, smooth_labels(9, 13, 5), mode="RGBA")
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            C.decode(data[:cut])
        with pytest.raises(DecodeError):
            C.read_header(data[:cut])
    C.decode(data)


def test_mutations_raise_only_decode_errors() -> None:
    """Corrupt bytes (with the CRC fixed up, to get past it) never escape as
    anything but DecodeError/LimitError."""
    rng = np.random.default_rng(123)
    files = [
        build(width=13, height=5, channels=1, k=k, coder=coder, flags=flags,
              labels=smooth_labels(5, 13, k))
        for k in (2, 5, 300) for coder in (0, 1, 2, 3) for flags in (0, 1)
    ]
    for data in files:
        for _ in range(25):
            bad = bytearray(data[:-4])
            for _ in range(int(rng.integers(1, 4))):
                bad[int(rng.integers(0, len(bad)))] = int(rng.integers(0, 256))
            fixed = bytes(bad) + struct.pack(">I", zlib.crc32(bad))
            try:
                C.decode(fixed)
            except (DecodeError, LimitError):
                pass


# --------------------------------------------------------------------------
# Limits and bombs
# --------------------------------------------------------------------------


def huge_file(coder: int = 1) -> bytes:
    payload = zlib.compress(b"\x00" * 1000) if coder == 1 else b"\x00" * 21
    return build(width=100_000, height=100_000, channels=1, k=2, coder=coder, payload=payload)


def test_huge_header_refused_without_allocating() -> None:
    data = huge_file()
    assert len(data) < 70
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(
            LimitError,
            match=r"100000x100000 = 10,000,000,000 pixels, above the limit of 178,956,970 pixels.*max_pixels.*--max-pixels",
        ):
            C.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.5
    assert peak < 1 << 20
    assert C.DEFAULT_MAX_PIXELS == 178_956_970


def test_max_pixels_none_disables_limit() -> None:
    # Past the limit, the file is then judged on its contents (here: too
    # little data for 10^10 indices), still without a big allocation.
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match=r"decompresses to only 1000 bytes"):
            C.decode(huge_file(), max_pixels=None)
        with pytest.raises(DecodeError, match=r"stored \(uncoded\) payload is 21 bytes"):
            C.decode(huge_file(coder=0), max_pixels=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # And a real file decodes with the limit off, or exactly at it.
    data = C.encode(np.zeros((2, 1), np.uint8), np.array([[0, 1, 1], [1, 0, 0]]), mode="L")
    assert C.decode(data, max_pixels=None).labels.shape == (2, 3)
    assert C.decode(data, max_pixels=6).labels.shape == (2, 3)
    with pytest.raises(LimitError, match=r"3x2 = 6 pixels, above the limit of 5 pixels"):
        C.decode(data, max_pixels=5)
    assert C.read_header(huge_file()).pixels == 10**10  # info needs no limit
    with pytest.raises(LimitError):
        C.read_header(huge_file(), max_pixels=1000)


@pytest.mark.parametrize("k, coder", [(1, 0), (2, 1), (65536, 3)])
def test_max_size_header_without_limit(k: int, coder: int) -> None:
    side = 2**32 - 1
    payload = b"" if k == 1 else code(coder, bytes(10))
    data = build(width=side, height=side, channels=1, k=k, coder=coder, payload=payload)
    with pytest.raises(LimitError, match="too large to hold in memory on this machine"):
        C.decode(data, max_pixels=None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_bad_max_pixels(bad: object) -> None:
    with pytest.raises(UsageError, match="max_pixels must be a positive integer or None"):
        C.decode(VALID, max_pixels=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("coder", [1, 2, 3])
def test_payload_larger_than_expected(coder: int) -> None:
    # 3x2 at 2 bits = 2 bytes expected; this stream inflates to 10 MB
    data = build(coder=coder, payload=code(coder, b"\x18\x90" + bytes(10_000_000)))
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match=r"decompresses to more than the 2 bytes"):
            C.decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("coder", [1, 2, 3])
def test_payload_shorter_than_expected(coder: int) -> None:
    data = build(coder=coder, payload=code(coder, b"\x18"))
    with pytest.raises(DecodeError, match=r"decompresses to only 1 bytes, 3x2 indices at 2 bits need 2"):
        C.decode(data)


@pytest.mark.parametrize("coder", [1, 2, 3])
def test_payload_stream_cut_short(coder: int) -> None:
    labels = smooth_labels(40, 40, 4)
    full = code(coder, pack_reference(labels, 2))
    data = build(width=40, height=40, k=4, coder=coder, payload=full[: len(full) // 2])
    with pytest.raises(DecodeError, match=r"(ends before its compressed stream does|cannot be decompressed)"):
        C.decode(data)


@pytest.mark.parametrize("coder", [1, 2, 3])
def test_payload_with_data_after_stream(coder: int) -> None:
    data = build(coder=coder, payload=code(coder, b"\x18\x90") + b"junk")
    with pytest.raises(DecodeError, match=r"4 bytes of unexpected data after the end of the \w+ stream"):
        C.decode(data)


@pytest.mark.parametrize("coder", [1, 2, 3])
def test_payload_garbage(coder: int) -> None:
    data = build(coder=coder, payload=b"\xff" * 16)
    with pytest.raises(DecodeError, match=r"payload cannot be decompressed|ends before"):
        C.decode(data)


def test_index_not_below_k() -> None:
    # K = 3 at 2 bits: the value 3 fits the bits but not the palette
    data = build(payload=b"\x18\x9c")  # row 1 = 10 01 11 -> index 3 at column 2
    with pytest.raises(DecodeError, match=r"index 3 at row 1, column 2 is not below K = 3"):
        C.decode(data)
    # unpacked: a byte per index, so any value up to 255
    data = build(k=5, flags=0, payload=bytes([0, 1, 2, 3, 4, 200]))
    with pytest.raises(DecodeError, match=r"index 200 at row 1, column 2 is not below K = 5"):
        C.decode(data)
    # 16-bit unpacked, compressed
    lab = np.array([[0, 1, 2], [3, 4, 60000]])
    data = build(k=300, flags=0, coder=3, payload=code(3, unpacked_reference(lab, 9)))
    with pytest.raises(DecodeError, match=r"index 60000 at row 1, column 2 is not below K = 300"):
        C.decode(data)


def test_errors_are_kmq_errors_with_exit_codes() -> None:
    with pytest.raises(KmqError) as e:
        C.decode(b"nope")
    assert e.value.exit_code == 4
    with pytest.raises(KmqError) as e:
        C.decode(huge_file())
    assert e.value.exit_code == 6


# --------------------------------------------------------------------------
# Encoder argument checks
# --------------------------------------------------------------------------

P3 = np.zeros((4, 3), np.uint8)
L2 = np.zeros((2, 2), np.uint8)


@pytest.mark.parametrize(
    "palette, labels, mode, pattern",
    [
        (P3, L2, "CMYK", r"mode must be one of 'L', 'LA', 'RGB', 'RGBA', got 'CMYK'"),
        (P3, L2, None, r"got None"),
        (P3, L2, "RGBA", r"palette has 3 channels per colour \(shape \(4, 3\)\) but mode 'RGBA' needs 4"),
        (np.zeros((0, 3), np.uint8), L2, "RGB", r"palette has 0 colours .*K must be 1 to 65536"),
        (np.zeros((65537, 1), np.uint8), L2, "L", r"palette has 65537 colours"),
        (np.zeros(12, np.uint8), L2, "RGB", r"palette must be a 2-D \(K, C\) array, got shape \(12,\)"),
        (P3.astype(float), L2, "RGB", r"palette must be a uint8 array, got dtype float64"),
        (np.full((4, 3), 256), L2, "RGB", r"palette values must be 0\.\.255, got a int64 array with values 256\.\.256"),
        (P3, np.zeros(4, np.uint8), "RGB", r"labels must be a 2-D \(H, W\) array, got shape \(4,\)"),
        (P3, np.zeros((0, 5), np.uint8), "RGB", r"labels must be at least 1x1, got shape \(0, 5\)"),
        (P3, np.zeros((2, 2), float), "RGB", r"labels must be an integer array, got dtype float64"),
        (P3, np.array([[0, 1], [4, 2]]), "RGB", r"labels contain value 4 at row 1, column 0, but the palette has only K = 4 colours"),
        (P3, np.array([[0, -1]]), "RGB", r"labels contain negative value -1 \(first at row 0, column 1\)"),
    ],
)
def test_encode_usage_errors(palette, labels, mode, pattern) -> None:
    with pytest.raises(UsageError, match=pattern):
        C.encode(palette, labels, mode=mode)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(UsageError, match="data must be bytes, bytearray or memoryview, got str"):
        C.decode("abc")  # type: ignore[arg-type]
