"""FORMAT.md's version 2 is complete: an independent decoder written from it.

The cm coder below is a straight, slow, pure-Python reading of the section
"Coder 4: cm" (no code shared with src/kmq/_cmcoder.pyx). It must decode
what kmq's writer produces, index for index; the worked example's bytes are
checked against the writer too.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import kmq
from kmq import _cmcoder
from kmq import _container as C
from kmq._errors import DecodeError

FORMAT = Path(kmq.__file__).with_name("FORMAT.md").read_text(encoding="utf-8")
M32 = 0xFFFFFFFF

T = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994,
     3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094]


def squash(d: int) -> int:
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    w = d & 127
    q = (d >> 7) + 16
    return (T[q] * (128 - w) + T[q + 1] * w + 64) >> 7


STRETCH = [0] * 4096
_pi = 0
for _d in range(-2047, 2048):
    _v = squash(_d)
    for _i in range(_pi, _v + 1):
        STRETCH[_i] = _d
    _pi = _v + 1
for _i in range(_pi, 4096):
    STRETCH[_i] = 2047
RATE = [131072 // (2 * n + 3) for n in range(256)]


def hash2(a: int, b: int) -> int:
    h = ((a * 0x9E3779B1) & M32) ^ ((b * 0x85EBCA6B) & M32)
    h ^= h >> 15
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 13
    return h


class Decoder:
    def __init__(self, payload: bytes):
        self.data, self.pos = payload, 0
        self.x1, self.x2, self.x = 0, M32, 0
        for _ in range(4):
            self.x = (self.x << 8) | self.byte()

    def byte(self) -> int:
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def bit(self, p: int) -> int:
        r = self.x2 - self.x1
        xmid = self.x1 + (r >> 12) * p + (((r & 0xFFF) * p) >> 12)
        y = 1 if self.x <= xmid else 0
        if y:
            self.x2 = xmid
        else:
            self.x1 = xmid + 1
        while ((self.x1 ^ self.x2) & 0xFF000000) == 0:
            self.x = ((self.x << 8) | self.byte()) & M32
            self.x1 = (self.x1 << 8) & M32
            self.x2 = ((self.x2 << 8) | 255) & M32
        return y


def mix(dec: Decoder, tables, indices, weights, rate: int) -> int:
    xs = [STRETCH[t[i] >> 20] for t, i in zip(tables, indices)]
    p = squash(sum(x * w for x, w in zip(xs, weights)) >> 16)
    y = dec.bit(p)
    e = ((y << 12) - p) * rate
    for j, (t, i) in enumerate(zip(tables, indices)):
        weights[j] = max(-(1 << 22), min(1 << 22, weights[j] + ((xs[j] * e) >> 10)))
        s = t[i]
        P, n = s >> 16, s & 0xFFFF
        P += (((65535 if y else 0) - P) * RATE[n]) >> 16
        if n < (255 if j == 0 else 127):
            n += 1
        t[i] = (P << 16) | n
    return y


def reference_cm_decode(payload: bytes, width: int, height: int, b: int) -> tuple[np.ndarray, int]:
    init = 0x80000000
    F1, F2, F3 = [init] * 1280, [init] * 65536, [init] * 65536
    A, B, Cc, D = [init] * (1 << b), [init] * 65536, [init] * 65536, [init] * 65536
    wf = [[21845] * 3 for _ in range(20)]
    wt = [[16384] * 4 for _ in range(16)]
    dec = Decoder(payload)
    L = [[0] * width for _ in range(height)]
    h = 4
    for y in range(height):
        for x in range(width):
            if y == 0:
                W = L[0][x - 1] if x > 0 else 0
                N = NW = NE = W
            elif x == 0:
                N = L[y - 1][0]
                W = NW = N
                NE = L[y - 1][1] if width > 1 else N
            else:
                W, N, NW = L[y][x - 1], L[y - 1][x], L[y - 1][x - 1]
                NE = L[y - 1][x + 1] if x + 1 < width else N
            e = (W == N) + 2 * (W == NE) + 4 * (W == NW) + 8 * (N == NE) + 16 * (N == NW) + 32 * (NE == NW)
            cands = []
            for c in (W, N, NE, NW):
                if c not in cands:
                    cands.append(c)
            hit = 4
            for i, c in enumerate(cands):
                idx = [(i * 64 + e) * 5 + h, hash2(W * 4 + i + 1, N) >> 16, hash2(c * 4 + i + 0x40000, e) >> 16]
                if mix(dec, (F1, F2, F3), idx, wf[i * 5 + h], 6):
                    hit, v = i, c
                    break
            if hit == 4:
                if b <= 8:
                    bw, bn = W << b, N << b
                else:
                    bw, bn = hash2(W + 0x20000, 0) >> 16, hash2(N + 0x30000, 0) >> 16
                bd = hash2(W + 0x10000, N) >> 16
                node = 1
                for j in range(b - 1, -1, -1):
                    idx = [node, (bw + node) & 0xFFFF, (bn + node) & 0xFFFF, (bd + node) & 0xFFFF]
                    node = 2 * node + mix(dec, (A, B, Cc, D), idx, wt[j], 4)
                v = node - (1 << b)
            h = hit
            L[y][x] = v
    return np.array(L), dec.pos


def reference_decode_file(data: bytes):
    """Whole v2 file -> (palette, labels, fields), from FORMAT.md alone."""
    magic, version, c, km1, w, h, b, coder, flags, plen, flen = struct.unpack_from(">8sBBHIIBBBII", data)
    assert magic == b"\x89KMQ\r\n\x1a\n" and version == 2 and coder == 4 and flags == 0
    k = km1 + 1
    assert len(data) == 31 + k * c + flen + plen + 4
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])
    palette = np.frombuffer(data[31 : 31 + k * c], np.uint8).reshape(k, c)
    fields, pos, end = {}, 31 + k * c, 31 + k * c + flen
    while pos < end:
        tag, n = data[pos : pos + 4], struct.unpack_from(">I", data, pos + 4)[0]
        fields[tag] = data[pos + 8 : pos + 8 + n]
        pos += 8 + n
    labels, read = reference_cm_decode(data[end : end + plen], w, h, b)
    assert read <= plen + 3
    return palette, labels, fields


def _smooth(h: int, w: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx // 3 + yy // 4 + rng.integers(0, 2, (h, w))) % k
    base[rng.random((h, w)) < 0.1] = rng.integers(0, k)
    return base


@pytest.mark.parametrize("k, h, w", [(2, 9, 13), (3, 1, 17), (16, 12, 1), (16, 14, 23), (300, 10, 21)])
def test_independent_decoder_from_format_md_matches_the_writer(k: int, h: int, w: int) -> None:
    rng = np.random.default_rng(k + h)
    palette = rng.integers(0, 256, (k, 4), dtype=np.uint8)
    labels = _smooth(h, w, k, seed=k)
    data = C.encode(palette, labels, mode="RGBA", icc_profile=b"ICC-bytes")
    if C.read_header(data).coder != "cm":  # stored can win on the tiniest images
        data = C._assemble(4, k, w, h, C.CODER_CM, False, palette.tobytes(),
                           _cmcoder.encode_indices(labels, C._bits_for(k)), version=2,
                           fields=C._encode_fields(b"ICC-bytes"))
    ref_palette, ref_labels, fields = reference_decode_file(data)
    np.testing.assert_array_equal(ref_labels, labels)
    np.testing.assert_array_equal(ref_palette, palette)
    assert fields == {b"iccp": b"ICC-bytes"}
    out = C.decode(data)
    np.testing.assert_array_equal(out.labels, labels)
    assert out.icc_profile == b"ICC-bytes"


def _example_bytes(title: str) -> bytes:
    block = FORMAT.split(f"## Worked example ({title})", 1)[1].split("```", 2)[1]
    out = bytearray()
    for line in block.strip().splitlines():
        m = re.match(r"([0-9a-f]{2}): (.*)", line)
        assert m and int(m.group(1), 16) == len(out), line
        for tok in m.group(2).split():
            if not re.fullmatch(r"[0-9a-f]{2}", tok):
                break
            out.append(int(tok, 16))
    return bytes(out)


def test_worked_example_v2_is_what_the_writer_writes() -> None:
    palette = np.array([[0, 0, 0], [255, 128, 0], [0, 128, 255]], np.uint8)
    labels = np.array([[0] * 4 + [1] * 4 + [2] * 4] * 2)
    data = C.encode(palette, labels, mode="RGB")
    assert data == _example_bytes("version 2")
    assert len(data) == 47
    ref_palette, ref_labels, _ = reference_decode_file(data)
    np.testing.assert_array_equal(ref_labels, labels)
    hdr = C.read_header(data)
    assert (hdr.version, hdr.coder, hdr.packed, hdr.header_length, hdr.fields_length) == (2, "cm", False, 31, 0)


def test_version_1_files_still_decode() -> None:
    palette = np.array([[0, 0, 0], [255, 128, 0], [0, 128, 255]], np.uint8)
    v1 = _example_bytes("version 1")
    out = C.decode(v1)
    np.testing.assert_array_equal(out.labels, [[0, 1, 2], [2, 1, 0]])
    np.testing.assert_array_equal(out.palette, palette)
    assert out.icc_profile is None
    labels = _smooth(30, 41, 64, seed=3)
    np.testing.assert_array_equal(C.decode(C._encode_v1(np.zeros((64, 3), np.uint8), labels, mode="RGB")).labels, labels)
    assert kmq.load(v1).labels.tolist() == [[0, 1, 2], [2, 1, 0]]


def _v2(fields: bytes = b"", payload: bytes | None = None, coder: int = 4, flags: int = 0, k: int = 3, plen: int | None = None) -> bytes:
    palette = bytes(range(3 * k))
    if payload is None:
        payload = _cmcoder.encode_indices(np.array([[0, 1, 2, 2, 1, 0]]), 2)
    head = struct.pack(">8sBBHIIBBBII", C.MAGIC, 2, 3, k - 1, 6, 1, C._bits_for(k), coder, flags,
                       len(payload) if plen is None else plen, len(fields))
    body = head + palette + fields + payload
    return body + struct.pack(">I", zlib.crc32(body))


def test_v2_hand_built_file_decodes() -> None:
    out = C.decode(_v2(fields=b"iccp\x00\x00\x00\x02hi" + b"zzzz\x00\x00\x00\x00"))
    assert out.labels.tolist() == [[0, 1, 2, 2, 1, 0]]
    assert out.icc_profile == b"hi"  # the unknown ancillary field 'zzzz' is skipped


@pytest.mark.parametrize(
    "data, pattern",
    [
        (_v2()[:30], r"truncated \.kmq file: only 30 bytes, the header alone is 31"),
        (_v2(fields=b"iccp\x00\x00\x00\x09hi"), r"optional field 'iccp' claims 9 bytes, only 2 remain"),
        (_v2(fields=b"iccp\x00\x00"), r"6 stray bytes at the end of the optional-field section"),
        (_v2(fields=b"iccp\x00\x00\x00\x01a" * 2), r"optional field 'iccp' appears twice"),
        (_v2(fields=b"iccp\x00\x00\x00\x00"), r"the 'iccp' field \(ICC profile\) is empty"),
        (_v2(fields=b"ZZZZ\x00\x00\x00\x00"), r"needs optional field 'ZZZZ', which this kmq does not know"),
        (_v2(fields=b"a1b2\x00\x00\x00\x00"), r"tag b'a1b2' is not 4 ASCII letters"),
        (_v2(coder=5), r"unknown coder id 5 for version 2 \(known: 0 stored, 1 zlib, 2 bz2, 3 lzma2, 4 cm\)"),
        (_v2(flags=1), r"the packed flag must be 0"),
        (_v2(payload=b""), r"the cm payload ends early \(0 bytes"),
        (_v2(payload=b"_\x82\xc2\xd9\xcf\xeb"), r"index 3 at row 0, column 1 is not below K = 3"),
    ],
)
def test_v2_specific_messages(data: bytes, pattern: str) -> None:
    with pytest.raises(DecodeError, match=pattern):
        C.decode(data)


def test_icc_profile_argument_checked() -> None:
    with pytest.raises(kmq.UsageError, match="icc_profile must not be empty"):
        C.encode(np.zeros((2, 3), np.uint8), [[0, 1]], mode="RGB", icc_profile=b"")
    with pytest.raises(kmq.UsageError, match="icc_profile must be bytes or None, got str"):
        C.encode(np.zeros((2, 3), np.uint8), [[0, 1]], mode="RGB", icc_profile="x")


def test_noise_is_stored_not_expanded() -> None:
    labels = np.random.default_rng(5).integers(0, 256, (600, 600))
    data = C.encode(np.zeros((256, 3), np.uint8), labels, mode="RGB")
    hdr = C.read_header(data)
    assert hdr.payload_length <= 600 * 600
    np.testing.assert_array_equal(C.decode(data).labels, labels)
