"""The ``.kmq`` container: a palette plus one palette index per pixel.

This module writes and reads the byte format specified in ``FORMAT.md``
(shipped next to this file). In brief, all integers big-endian::

    magic(8) version(1) channels(1) K-1(u16) width(u32) height(u32)
    bits(1) coder(1) flags(1) payload_length(u32)      -- 27-byte v1 header
    fields_length(u32)                                 -- version 2 only
    palette (K x channels bytes)
    optional fields (version 2: tag(4) length(u32) data, ...; an ICC profile)
    payload (the index stream, coded by `coder`)
    CRC-32 (u32, zlib's, over every byte before it)

kmq writes version 2 and reads both. Version 2's index map is coded by
coder 4, ``cm`` (``_cmcoder.pyx``): each index is coded as binary decisions
-- "is it W?", "is it N?", "NE?", "NW?" (the distinct neighbours), then,
if none, its bits through a binary tree -- each with a probability mixed
(logistic mixing, as in lpaq) from three or four adaptive context models
(the neighbours' equality pattern and the previous pixel's outcome; W and
N; the candidate's value; order 0, W, N and the (W, N) pair for the tree),
and an lpaq-style carry-less 32-bit binary arithmetic coder. Where that
does not pay (noise), the packed stream is stored or zlib-coded instead.

Measured (version 2)
--------------------
On the 24 Kodak photographs (768x512) quantized by kmq (seed 0, palette
order of ``_palette_order``), whole version 2 files total 1,232,224 /
2,351,115 / 3,793,887 bytes at K = 16 / 64 / 256, against JPEG XL lossless
(``cjxl -d 0 -e 7``, of the same RGB image) 1,340,925 / 2,851,136 /
5,078,054: 0.92 / 0.82 / 0.75x, and no larger on 24 of 24 images at each
K. Against ``cjxl -e 9`` (22 of the images): 1.01 / 0.93 / 0.82x, no
larger on 12 / 20 / 22 of 22. Version 1 (below) was 18-30 % larger
(docs/benchmarks.md has the whole table). Coding the 24 images took 1.3 /
2.3 / 5.1 s of CPU in all (0.14-0.54 s per megapixel, on a machine loaded
by other jobs; ``cjxl -e 7`` took 29-54 s) and decoding about as long. On
noise the writer codes a 65,536-pixel band first and stores the image
when the cm coder saves under 5 % there, so no input is slow to encode.

Version 1's coders (kept for reading; ``_encode_v1`` writes them)
------------------------------------------------------------------
The index stream is either *packed* (``bits = ceil(log2 K)`` bits per index,
most significant bit first, each row padded to a whole byte) or *unpacked*
(one byte per index, or two bytes big-endian when K > 256), and it is then
either stored as is or compressed with zlib, bz2 or raw LZMA2 (Python's
standard library).

Why these coders (measured, not guessed)
----------------------------------------
On the 24 Kodak photographs (768x512) quantized by Pillow's median cut
without dithering, total bytes of the index stream alone, by candidate
(``u`` = unpacked, ``p`` = packed), against Pillow's ``optimize=True``
indexed PNG of the same image:

=====  =========  =========  =========  =========  =========  =========  =========
K      zlib-9 u   zlib-9 p   bz2-9 u    bz2-9 p    lzma u     lzma p     PNG file
=====  =========  =========  =========  =========  =========  =========  =========
16     2,222,678  2,172,699  2,108,584  2,024,398  1,963,477  1,936,138  2,358,926
64     3,860,933  4,444,779  3,483,254  3,892,833  3,422,594  4,028,356  3,891,266
256    5,984,032  (same)     5,059,544  (same)     5,157,532  (same)     6,050,319
=====  =========  =========  =========  =========  =========  =========  =========

(lzma here is preset 9 | extreme with lc=4, lp=0, pb=0, which measured
0.2-1.1 % smaller than the preset's lc=3, pb=2; its dictionary is cut to
the stream's size, which costs nothing in size and up to half its time.) No
single candidate wins everywhere: packed LZMA2 wins most K=16 images,
unpacked LZMA2 most K=64 ones and bz2 most K=256 ones, so :func:`encode`
codes each layout with each coder and keeps the smallest. Whole files
(header, palette and CRC included) then total 1,933,503 / 3,413,777 /
5,063,245 bytes against PNG's 2,358,926 / 3,891,266 / 6,050,319 at
K = 16 / 64 / 256 (82.0 / 87.7 / 83.7 %), smaller on 24 of 24 images at
each K, by 6.4 % / 7.7 % / 12.3 % at least (``benchmarks/container_size.py``).
zlib never won on Kodak and is slow on unpacked streams, but it is the most
widely available coder for other implementations, so the format keeps it
and the writer tries it on the packed stream only. Two cheap transforms
were measured and rejected: sorting the palette by luminance (+0.1 to
+1 %) and a left-neighbour difference or LZMA's delta filter (+10 to
+18 %); palette indices are labels, not magnitudes. An adaptive
context-modelling arithmetic coder (left/up neighbours as context) would
likely save another 15-25 % (the static conditional entropy given left
and up is 1.55 MB at K=16 and 2.49 MB at K=64), but it was not needed to
beat PNG on every image, so the format stays standard-library only.

Cost: encoding a 768x512 image takes 0.15-0.35 s of CPU (LZMA2, at about
2-3 MB/s of index stream, dominates; the coders release the GIL and run in
parallel threads). Streams over 4 MiB run LZMA2 on one layout only, chosen
on a 1 MiB band of rows, so a 6 Mpx image takes about 3.5-5.5 s. Decoding
takes 10-20 ms for 768x512.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import struct
import sys
import zlib
from typing import Any

import numpy as np

from kmq._engine import _parallel
from kmq._errors import DecodeError, LimitError, UsageError

__all__ = [
    "MAGIC",
    "VERSION",
    "HEADER_SIZE",
    "DEFAULT_MAX_PIXELS",
    "MODES",
    "CODERS",
    "VERSIONS",
    "Header",
    "Container",
    "encode",
    "decode",
    "read_header",
]

#: First 8 bytes of every ``.kmq`` file (PNG-style: a non-ASCII byte, the
#: name, then CR LF, Ctrl-Z and LF to catch text-mode transfers).
MAGIC = b"\x89KMQ\r\n\x1a\n"
#: The format version this module writes (it reads versions 1 and 2).
VERSION = 2
#: Versions :func:`decode` reads.
VERSIONS = (1, 2)
#: ``>8sBBHIIBBBI``: magic, version, channels, K-1, width, height, bits,
#: coder, flags, payload length (version 1's whole header).
_HEADER = struct.Struct(">8sBBHIIBBBI")
#: Size of the version 1 header in bytes (27); the fields every version shares.
HEADER_SIZE = _HEADER.size
#: Version 2 adds the optional-field section's length (u32) after them: 31 bytes.
_FIELDS_LENGTH = struct.Struct(">I")
HEADER_SIZE_V2 = HEADER_SIZE + _FIELDS_LENGTH.size
#: Size of the trailing CRC-32 in bytes.
CRC_SIZE = 4
#: Decode refuses images with more pixels than this unless told otherwise:
#: twice Pillow's ``Image.MAX_IMAGE_PIXELS`` default (89,478,485), i.e. the
#: size at which Pillow itself raises ``DecompressionBombError``.
DEFAULT_MAX_PIXELS = 178_956_970

#: Channel count -> mode name.
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_CHANNELS = {name: c for c, name in MODES.items()}

CODER_STORED = 0
CODER_ZLIB = 1
CODER_BZ2 = 2
CODER_LZMA2 = 3
#: Version 2 only: kmq's context-mixing arithmetic coder (FORMAT.md, "coder 4").
CODER_CM = 4
#: Coder id -> name.
CODERS = {CODER_STORED: "stored", CODER_ZLIB: "zlib", CODER_BZ2: "bz2", CODER_LZMA2: "lzma2", CODER_CM: "cm"}
_CODERS_BY_VERSION = {1: (0, 1, 2, 3), 2: (0, 1, 2, 3, 4)}

#: Version 2 optional-field tags (4 ASCII letters; FORMAT.md). A first
#: letter in upper case marks a field a reader must understand.
FIELD_ICC = b"iccp"
_KNOWN_FIELDS = (FIELD_ICC,)

#: Flags bit 0: the index stream is bit-packed (else one/two bytes per index).
FLAG_PACKED = 0x01
_KNOWN_FLAGS = FLAG_PACKED

MAX_K = 65536
_MAX_U32 = 0xFFFFFFFF
#: LZMA2 dictionary: the raw stream's size clamped to [4 KiB, 64 MiB]. The
#: writer never uses more; a reader configures exactly this (a dictionary at
#: least as large as the data, or as the writer's, always decodes).
_LZMA_DICT_MIN = 4096
_LZMA_DICT_MAX = 64 << 20
#: Pixels (un)packed per step, to bound temporary memory (~16 B per pixel).
_CHUNK_PIXELS = 1 << 18
#: Index streams at least this long are compressed in parallel threads.
_PARALLEL_MIN_BYTES = 1 << 16
#: Above this many bytes of unpacked index stream, LZMA2 is tried on one
#: layout only, chosen on a sample band of about _SAMPLE_BYTES.
_SAMPLE_ABOVE = 4 << 20
_SAMPLE_BYTES = 1 << 20

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"qoif", "a QOI image"),
)


def _bits_for(k: int) -> int:
    """Bits per index for a palette of ``k`` colours: ceil(log2 k), 0 for 1."""
    return (k - 1).bit_length()


def _lzma_dict_size(n: int) -> int:
    return max(_LZMA_DICT_MIN, min(n, _LZMA_DICT_MAX))


def _index_length(width: int, height: int, bits: int, packed: bool) -> int:
    """Size in bytes of the raw (uncoded) index stream."""
    if bits == 0:
        return 0
    if packed:
        return height * ((width * bits + 7) // 8)
    return height * width * (1 if bits <= 8 else 2)


# --------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Header:
    """The fixed fields of a ``.kmq`` file, validated, plus derived sizes.

    Attributes
    ----------
    version : int
        Format version, 1 or 2.
    width, height : int
        Image size in pixels, each >= 1.
    channels : int
        Channels per palette colour, 1..4.
    mode : str
        ``"L"``, ``"LA"``, ``"RGB"`` or ``"RGBA"`` (from ``channels``).
    k : int
        Palette size K, 1..65536.
    bits_per_index : int
        ``ceil(log2 K)``; 0 when K == 1 (no index data at all).
    coder_id : int
        0 stored, 1 zlib, 2 bz2, 3 lzma2, 4 cm (version 2 only).
    coder : str
        Name of ``coder_id``.
    packed : bool
        Whether the index stream is bit-packed (else 1 or 2 bytes per index).
    payload_length : int
        Bytes of coded index data in the file.
    file_size : int
        Total bytes of the file (header + palette + fields + payload + CRC).
    fields_length : int
        Bytes of the optional-field section (version 2; 0 in version 1).
    """

    version: int
    width: int
    height: int
    channels: int
    mode: str
    k: int
    bits_per_index: int
    coder_id: int
    coder: str
    packed: bool
    payload_length: int
    file_size: int
    fields_length: int = 0

    @property
    def header_length(self) -> int:
        """Bytes of the fixed header: 27 in version 1, 31 in version 2."""
        return HEADER_SIZE if self.version == 1 else HEADER_SIZE_V2

    @property
    def pixels(self) -> int:
        """Number of pixels, ``width * height``."""
        return self.width * self.height

    @property
    def palette_length(self) -> int:
        """Bytes of palette data, ``k * channels``."""
        return self.k * self.channels

    @property
    def index_length(self) -> int:
        """Bytes of the index stream once decoded (before bit-unpacking)."""
        return _index_length(self.width, self.height, self.bits_per_index, self.packed)

    def as_dict(self) -> dict[str, Any]:
        """All fields and derived sizes as a JSON-serialisable dict."""
        d = dataclasses.asdict(self)
        d["pixels"] = self.pixels
        d["header_length"] = self.header_length
        d["palette_length"] = self.palette_length
        d["index_length"] = self.index_length
        return d


def _not_kmq(data: bytes | memoryview) -> DecodeError:
    head = bytes(data[: len(MAGIC)])
    msg = f"not a .kmq file: magic bytes are {head!r}, expected {MAGIC!r}"
    if head[:4] == MAGIC[:4]:
        msg += (
            " (the start matches but the CR LF / Ctrl-Z / LF bytes differ: the file"
            " was probably damaged by a text-mode transfer that converted line endings)"
        )
    else:
        for sig, what in _SIGNATURES:
            if head.startswith(sig):
                msg += f" (this looks like {what})"
                break
    return DecodeError(msg)


def _as_buffer(data: Any) -> memoryview:
    if isinstance(data, (bytes, bytearray, memoryview)):
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        return mv
    raise UsageError(
        f"data must be bytes, bytearray or memoryview, got {type(data).__name__}"
    )


def _check_max_pixels(max_pixels: Any) -> None:
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise UsageError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")


def _parse_header(mv: memoryview, max_pixels: int | None) -> Header:
    n = len(mv)
    if n < len(MAGIC) and MAGIC.startswith(bytes(mv)):
        if n == 0:
            raise DecodeError("not a .kmq file: it is empty (0 bytes)")
        raise DecodeError(
            f"truncated .kmq file: only {n} bytes, the header alone is {HEADER_SIZE}"
        )
    if bytes(mv[: len(MAGIC)]) != MAGIC:
        raise _not_kmq(mv)
    if n < len(MAGIC) + 1:
        raise DecodeError(
            f"truncated .kmq file: only {n} bytes, the header alone is {HEADER_SIZE}"
        )
    version = mv[len(MAGIC)]
    if version not in VERSIONS:
        raise DecodeError(f"unsupported .kmq version {version} (this kmq reads versions 1 and 2)")
    header_size = HEADER_SIZE if version == 1 else HEADER_SIZE_V2
    if n < header_size:
        raise DecodeError(
            f"truncated .kmq file: only {n} bytes, the header alone is {header_size}"
        )
    (_, _, channels, k_minus_1, width, height, bits, coder, flags, payload_length) = (
        _HEADER.unpack_from(mv, 0)
    )
    fields_length = 0 if version == 1 else _FIELDS_LENGTH.unpack_from(mv, HEADER_SIZE)[0]
    k = k_minus_1 + 1
    if width < 1 or height < 1:
        raise DecodeError(
            f"corrupt .kmq header: image size is {width}x{height}, "
            "width and height must each be at least 1"
        )
    if channels not in MODES:
        raise DecodeError(
            f"corrupt .kmq header: channels is {channels}, "
            "expected 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)"
        )
    need_bits = _bits_for(k)
    if bits != need_bits:
        raise DecodeError(
            f"corrupt .kmq header: bits per index is {bits}, "
            f"but K = {k} colours need exactly {need_bits}"
        )
    if coder not in _CODERS_BY_VERSION[version]:
        known = ", ".join(f"{i} {CODERS[i]}" for i in _CODERS_BY_VERSION[version])
        raise DecodeError(
            f"corrupt .kmq header: unknown coder id {coder} for version {version} (known: {known})"
        )
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError(
            f"corrupt .kmq header: flags byte is 0x{flags:02x}; reserved bits "
            f"0x{flags & ~_KNOWN_FLAGS & 0xFF:02x} must be zero"
        )
    packed = bool(flags & FLAG_PACKED)
    if coder == CODER_CM and packed:
        raise DecodeError(
            "corrupt .kmq header: flags byte is 0x01, but the cm coder codes indices, "
            "not a byte layout, so the packed flag must be 0"
        )
    if coder == CODER_CM and bits == 0:
        raise DecodeError("corrupt .kmq header: coder cm with K = 1 (K = 1 has no index data; coder must be 0)")

    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        raise LimitError(
            f".kmq image is {width}x{height} = {pixels:,} pixels, above the limit of "
            f"{max_pixels:,} pixels (a guard against decompression bombs); if you trust "
            "this file, raise the limit with max_pixels= (CLI: --max-pixels), or pass "
            "max_pixels=None to disable it"
        )

    index_length = _index_length(width, height, bits, packed)
    if coder == CODER_STORED and payload_length != index_length:
        layout = f"{bits}-bit packed" if packed else "unpacked"
        raise DecodeError(
            f"corrupt .kmq header: stored (uncoded) payload is {payload_length} bytes, "
            f"but {width}x{height} {layout} indices take exactly {index_length}"
        )

    palette_length = k * channels
    remain = n - header_size
    if remain < palette_length:
        raise DecodeError(
            f"truncated .kmq file: header says {k} x {channels} = {palette_length} "
            f"palette bytes, only {remain} remain"
        )
    remain -= palette_length
    if remain < fields_length:
        raise DecodeError(
            f"truncated .kmq file: header says {fields_length} bytes of optional fields, "
            f"only {remain} remain"
        )
    remain -= fields_length
    if remain < payload_length:
        raise DecodeError(
            f"truncated .kmq file: header says {payload_length} payload bytes, "
            f"only {remain} remain"
        )
    remain -= payload_length
    if remain < CRC_SIZE:
        raise DecodeError(
            f"truncated .kmq file: the final 4-byte CRC-32 is missing "
            f"(only {remain} bytes after the payload)"
        )
    file_size = header_size + palette_length + fields_length + payload_length + CRC_SIZE
    if n > file_size:
        raise DecodeError(
            f"corrupt .kmq file: {n - file_size} unexpected bytes after the CRC-32 "
            f"(the header accounts for {file_size} bytes, the file has {n})"
        )
    return Header(
        version=version,
        width=width,
        height=height,
        channels=channels,
        mode=MODES[channels],
        k=k,
        bits_per_index=bits,
        coder_id=coder,
        coder=CODERS[coder],
        packed=packed,
        payload_length=payload_length,
        file_size=file_size,
        fields_length=fields_length,
    )


def read_header(data: bytes, *, max_pixels: int | None = None, check_crc: bool = False) -> Header:
    """Parse and validate the header of a ``.kmq`` file, without decoding it.

    Checks the magic, the version, every header field and that the file's
    size matches what the header says (no truncation, no trailing bytes).
    It decompresses nothing, so it is cheap for any file (as used by
    ``kmq info``).

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_pixels : int or None, optional
        If given, raise :class:`~kmq.LimitError` for larger images. By
        default no limit: reading a header allocates nothing.
    check_crc : bool, optional
        Also verify the CRC-32 over the whole file (one pass over its bytes),
        so that damage anywhere in it is reported.

    Returns
    -------
    Header

    Raises
    ------
    DecodeError
        If the data is not a valid ``.kmq`` header or the file size is wrong.
    LimitError
        If ``max_pixels`` is given and exceeded.
    """
    _check_max_pixels(max_pixels)
    mv = _as_buffer(data)
    hdr = _parse_header(mv, max_pixels)
    if check_crc:
        _check_crc(mv, hdr)
    return hdr


def _check_crc(mv: memoryview, hdr: Header) -> None:
    """Raise DecodeError unless the stored CRC-32 matches the bytes before it."""
    end = hdr.file_size - CRC_SIZE
    stored = struct.unpack_from(">I", mv, end)[0]
    computed = zlib.crc32(mv[:end])
    if stored != computed:
        raise DecodeError(
            f"corrupt .kmq file: CRC-32 mismatch (stored 0x{stored:08x}, "
            f"computed 0x{computed:08x})"
        )


# --------------------------------------------------------------------------
# Index stream layouts
# --------------------------------------------------------------------------


def _pack(labels: np.ndarray, bits: int) -> bytes:
    """Labels (H, W) -> packed index stream (MSB first, rows byte-padded)."""
    h, w = labels.shape
    if bits == 0:
        return b""
    if bits == 8:
        return labels.astype(np.uint8).tobytes()
    if bits == 16:
        return labels.astype(">u2").tobytes()
    nbytes = 1 if bits < 8 else 2
    be = labels.astype(">u1" if nbytes == 1 else ">u2")
    step = max(1, _CHUNK_PIXELS // w)
    out = []
    for r0 in range(0, h, step):
        blk = be[r0 : r0 + step]
        rows = blk.shape[0]
        raw = blk.view(np.uint8).reshape(rows, w, nbytes)
        allbits = np.unpackbits(raw, axis=2)[:, :, 8 * nbytes - bits :]
        out.append(np.packbits(allbits.reshape(rows, w * bits), axis=1).tobytes())
    return b"".join(out)


def _unpacked(labels: np.ndarray, bits: int) -> bytes:
    """Labels (H, W) -> one byte per index (two, big-endian, if bits > 8)."""
    if bits == 0:
        return b""
    return labels.astype(np.uint8 if bits <= 8 else ">u2").tobytes()


def _unpack(raw: bytes, width: int, height: int, bits: int, packed: bool) -> np.ndarray:
    """Index stream -> labels (H, W), uint8 if bits <= 8 else uint16."""
    dtype = np.uint8 if bits <= 8 else np.uint16
    if bits == 0:
        return np.zeros((height, width), dtype)
    if not packed or bits in (8, 16):
        src = np.frombuffer(raw, np.uint8 if bits <= 8 else ">u2")
        return src.reshape(height, width).astype(dtype)
    nbytes = 1 if bits < 8 else 2
    rowbytes = (width * bits + 7) // 8
    src = np.frombuffer(raw, np.uint8).reshape(height, rowbytes)
    out = np.empty((height, width), dtype)
    step = max(1, _CHUNK_PIXELS // width)
    pad = 8 * nbytes - bits
    for r0 in range(0, height, step):
        blk = src[r0 : r0 + step]
        rows = blk.shape[0]
        b = np.unpackbits(blk, axis=1, count=width * bits).reshape(rows, width, bits)
        full = np.zeros((rows, width, 8 * nbytes), np.uint8)
        full[:, :, pad:] = b
        vals = np.packbits(full, axis=2)  # (rows, width, nbytes), big-endian
        if nbytes == 1:
            out[r0 : r0 + rows] = vals[:, :, 0]
        else:
            out[r0 : r0 + rows] = vals.view(">u2")[:, :, 0]
    return out


# --------------------------------------------------------------------------
# Coders
# --------------------------------------------------------------------------


def _lzma_filters(n: int, *, encoder: bool) -> list[dict[str, Any]]:
    f: dict[str, Any] = {"id": lzma.FILTER_LZMA2, "dict_size": _lzma_dict_size(n)}
    if encoder:
        f.update(preset=9 | lzma.PRESET_EXTREME, lc=4, lp=0, pb=0)
    return [f]


def _compress(coder: int, raw: bytes) -> bytes:
    if coder == CODER_STORED:
        return raw
    if coder == CODER_ZLIB:
        return zlib.compress(raw, 9)
    if coder == CODER_BZ2:
        return bz2.compress(raw, 9)
    return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_lzma_filters(len(raw), encoder=True))


def _decompress(hdr: Header, payload: memoryview) -> bytes:
    """Decode the payload into exactly ``hdr.index_length`` bytes, bounded."""
    n = hdr.index_length
    coder = hdr.coder_id
    if coder == CODER_STORED:
        return bytes(payload)  # its length was checked against n in the header
    name = hdr.coder
    try:
        if coder == CODER_ZLIB:
            d: Any = zlib.decompressobj()
        elif coder == CODER_BZ2:
            d = bz2.BZ2Decompressor()
        else:
            d = lzma.LZMADecompressor(
                format=lzma.FORMAT_RAW, filters=_lzma_filters(n, encoder=False)
            )
        # Ask for one byte more than needed: getting it proves the stream
        # is too long without ever holding more than n + 1 bytes.
        out = d.decompress(payload, n + 1)
    except MemoryError:
        raise LimitError(
            f"not enough memory to decode the {name} payload of a "
            f"{hdr.width}x{hdr.height} .kmq image ({n:,} bytes of indices)"
        ) from None
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as e:
        raise DecodeError(
            f"corrupt .kmq file: the {name} payload cannot be decompressed ({e})"
        ) from None
    if len(out) > n:
        raise DecodeError(
            f"corrupt .kmq file: the {name} payload decompresses to more than the "
            f"{n} bytes that {hdr.width}x{hdr.height} indices at {hdr.bits_per_index} "
            "bits need"
        )
    if not d.eof:
        raise DecodeError(
            f"corrupt .kmq file: the {name} payload ends before its compressed stream "
            f"does (decompressed {len(out)} of {n} bytes)"
        )
    if d.unused_data:
        raise DecodeError(
            f"corrupt .kmq file: {len(d.unused_data)} bytes of unexpected data after "
            f"the end of the {name} stream inside the payload"
        )
    if len(out) < n:
        raise DecodeError(
            f"corrupt .kmq file: the {name} payload decompresses to only {len(out)} "
            f"bytes, {hdr.width}x{hdr.height} indices at {hdr.bits_per_index} bits "
            f"need {n}"
        )
    return out


# --------------------------------------------------------------------------
# Container, encode, decode
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Container:
    """A decoded ``.kmq`` file.

    Attributes
    ----------
    palette : numpy.ndarray
        ``(K, C)`` uint8, one row per colour, C = ``channels``.
    labels : numpy.ndarray
        ``(H, W)`` palette indices, uint8 if K <= 256 else uint16, all < K.
    mode : str
        ``"L"``, ``"LA"``, ``"RGB"`` or ``"RGBA"``.
    icc_profile : bytes or None
        The embedded ICC profile (version 2 ``iccp`` field), if any.
    """

    palette: np.ndarray
    labels: np.ndarray
    mode: str
    #: The ICC profile stored in a version 2 file's ``iccp`` field, or None.
    icc_profile: bytes | None = None

    @property
    def width(self) -> int:
        """Image width W in pixels."""
        return int(self.labels.shape[1])

    @property
    def height(self) -> int:
        """Image height H in pixels."""
        return int(self.labels.shape[0])

    @property
    def k(self) -> int:
        """Palette size K."""
        return int(self.palette.shape[0])

    @property
    def channels(self) -> int:
        """Channels per colour C (1..4)."""
        return int(self.palette.shape[1])

    def pixels(self) -> np.ndarray:
        """The image, ``palette[labels]``: ``(H, W, C)`` uint8 (a compiled
        lookup: numpy's fancy indexing of a small table is ~10x slower)."""
        from kmq._engine.remap import rebuild

        return rebuild(self.palette, self.labels)


def _validate_palette(palette: Any, mode: Any) -> tuple[np.ndarray, int]:
    if not isinstance(mode, str) or mode not in _CHANNELS:
        raise UsageError(f"mode must be one of 'L', 'LA', 'RGB', 'RGBA', got {mode!r}")
    channels = _CHANNELS[mode]
    try:
        pal = np.asarray(palette)
    except Exception as e:  # ragged lists and the like
        raise UsageError(f"palette must be a (K, C) uint8 array, got {type(palette).__name__} ({e})") from None
    if pal.ndim != 2:
        raise UsageError(
            f"palette must be a 2-D (K, C) array, got shape {pal.shape}"
        )
    if pal.dtype.kind not in "ui":
        raise UsageError(
            f"palette must be a uint8 array, got dtype {pal.dtype} "
            "(round and convert it with .astype(numpy.uint8) first)"
        )
    k, c = pal.shape
    if c != channels:
        raise UsageError(
            f"palette has {c} channels per colour (shape {pal.shape}) but mode "
            f"{mode!r} needs {channels}"
        )
    if not 1 <= k <= MAX_K:
        raise UsageError(f"palette has {k} colours (shape {pal.shape}); K must be 1 to {MAX_K}")
    if pal.dtype != np.uint8:
        lo, hi = int(pal.min()), int(pal.max())
        if lo < 0 or hi > 255:
            raise UsageError(
                f"palette values must be 0..255, got a {pal.dtype} array "
                f"with values {lo}..{hi}"
            )
        pal = pal.astype(np.uint8)
    return np.ascontiguousarray(pal), channels


def _validate_labels(labels: Any, k: int) -> np.ndarray:
    try:
        lab = np.asarray(labels)
    except Exception as e:
        raise UsageError(f"labels must be a (H, W) integer array, got {type(labels).__name__} ({e})") from None
    if lab.ndim != 2:
        raise UsageError(f"labels must be a 2-D (H, W) array, got shape {lab.shape}")
    if lab.dtype.kind not in "ui":
        raise UsageError(f"labels must be an integer array, got dtype {lab.dtype}")
    h, w = lab.shape
    if h < 1 or w < 1:
        raise UsageError(f"labels must be at least 1x1, got shape {lab.shape}")
    if h > _MAX_U32 or w > _MAX_U32:
        raise UsageError(f"labels shape {lab.shape} exceeds the format's 2^32-1 limit per side")
    lo = int(lab.min())
    if lo < 0:
        r, c = np.unravel_index(int(np.argmax(lab < 0)), lab.shape)
        raise UsageError(f"labels contain negative value {lo} (first at row {r}, column {c})")
    hi = int(lab.max())
    if hi >= k:
        r, c = np.unravel_index(int(np.argmax(lab >= k)), lab.shape)
        raise UsageError(
            f"labels contain value {int(lab[r, c])} at row {r}, column {c}, but the "
            f"palette has only K = {k} colours (labels must be < K)"
        )
    return lab


def _candidates(labels: np.ndarray, bits: int) -> list[tuple[int, bool, bytes]]:
    """All (coder, packed, payload) the writer tries, in tie-break order.

    The stdlib coders release the GIL, so large streams are compressed in
    parallel threads (the result does not depend on it).
    """
    if bits == 0:
        return [(CODER_STORED, True, b"")]
    streams = [(True, _pack(labels, bits))]
    if bits not in (8, 16):
        streams.append((False, _unpacked(labels, bits)))
    lzma_layouts = {True, False}
    if len(streams) == 2 and len(streams[1][1]) > _SAMPLE_ABOVE:
        # LZMA2 runs at only ~2-3 MB/s: on a big image, run it on one layout,
        # the one that wins on a band of rows from the middle (on Kodak at
        # K=16, where the layouts are closest, that costs 0.5 % in size).
        h, w = labels.shape
        rows = max(1, _SAMPLE_BYTES // (w * (1 if bits <= 8 else 2)))
        band = labels[max(0, (h - rows) // 2) :][:rows]
        p = len(_compress(CODER_LZMA2, _pack(band, bits)))
        u = len(_compress(CODER_LZMA2, _unpacked(band, bits)))
        lzma_layouts = {p <= u}
    jobs = []
    for is_packed, raw in streams:
        jobs.append((CODER_STORED, is_packed, raw))
        if is_packed:  # zlib never won on Kodak; kept on the cheaper packed stream only
            jobs.append((CODER_ZLIB, is_packed, raw))
        jobs.append((CODER_BZ2, is_packed, raw))
        if is_packed in lzma_layouts:
            jobs.append((CODER_LZMA2, is_packed, raw))

    def run(job: tuple[int, bool, bytes]) -> tuple[int, bool, bytes]:
        return job[0], job[1], _compress(job[0], job[2])

    workers = min(len(jobs), _parallel.cores())
    if workers > 1 and len(streams[0][1]) >= _PARALLEL_MIN_BYTES:
        from concurrent.futures import ThreadPoolExecutor  # here: 4 ms of every run's start-up

        with ThreadPoolExecutor(workers) as ex:
            return list(ex.map(run, jobs))
    return [run(j) for j in jobs]


def _assemble(
    channels: int, k: int, width: int, height: int, coder: int, packed: bool,
    palette: bytes, payload: bytes, *, version: int = 1, fields: bytes = b"",
) -> bytes:
    head = _HEADER.pack(
        MAGIC, version, channels, k - 1, width, height, _bits_for(k), coder,
        FLAG_PACKED if packed else 0, len(payload),
    )
    if version == 2:
        head += _FIELDS_LENGTH.pack(len(fields))
    body = b"".join((head, palette, fields, payload))
    return body + struct.pack(">I", zlib.crc32(body))


def _encode_fields(icc_profile: Any) -> bytes:
    """The version 2 optional-field section: tag(4) length(u32) data, ..."""
    if icc_profile is None:
        return b""
    if not isinstance(icc_profile, (bytes, bytearray, memoryview)):
        raise UsageError(f"icc_profile must be bytes or None, got {type(icc_profile).__name__}")
    icc = bytes(icc_profile)
    if not icc:
        raise UsageError("icc_profile must not be empty (pass None for no profile)")
    if len(icc) > _MAX_U32 - 8:
        raise UsageError(f"icc_profile is {len(icc):,} bytes, above the format's 4 GiB limit")
    return FIELD_ICC + struct.pack(">I", len(icc)) + icc


def _parse_fields(section: memoryview) -> dict[bytes, bytes]:
    """Split the optional-field section into {tag: data}, checking lengths."""
    fields: dict[bytes, bytes] = {}
    pos, n = 0, len(section)
    while pos < n:
        if n - pos < 8:
            raise DecodeError(
                f"corrupt .kmq file: {n - pos} stray bytes at the end of the optional-field "
                "section (a field needs at least 8: tag and length)"
            )
        tag = bytes(section[pos : pos + 4])
        (length,) = struct.unpack_from(">I", section, pos + 4)
        if not all(65 <= b <= 90 or 97 <= b <= 122 for b in tag):
            raise DecodeError(f"corrupt .kmq file: optional-field tag {tag!r} is not 4 ASCII letters")
        if length > n - pos - 8:
            raise DecodeError(
                f"corrupt .kmq file: optional field {tag.decode()!r} claims {length} bytes, "
                f"only {n - pos - 8} remain in the field section"
            )
        if tag in fields:
            raise DecodeError(f"corrupt .kmq file: optional field {tag.decode()!r} appears twice")
        if tag not in _KNOWN_FIELDS and 65 <= tag[0] <= 90:
            raise DecodeError(
                f"unsupported .kmq file: it needs optional field {tag.decode()!r}, which this "
                "kmq does not know"
            )
        fields[tag] = bytes(section[pos + 8 : pos + 8 + length])
        pos += 8 + length
    if FIELD_ICC in fields and not fields[FIELD_ICC]:
        raise DecodeError("corrupt .kmq file: the 'iccp' field (ICC profile) is empty")
    return fields


#: Above this many pixels the writer first codes a band of about this many
#: with the cm coder; if that saves under 5 % against the stored packed
#: band (noise), the whole image is stored or zlib-coded instead, so any
#: input encodes fast.
_CM_SAMPLE_PIXELS = 1 << 16
_CM_SAMPLE_MIN_GAIN = 0.95


def _v2_candidates(labels: np.ndarray, bits: int) -> list[tuple[int, bool, bytes]]:
    """(coder, packed, payload) candidates of the version 2 writer."""
    from kmq import _cmcoder

    if bits == 0:
        return [(CODER_STORED, True, b"")]
    h, w = labels.shape
    packed = _pack(labels, bits)
    if h * w > 2 * _CM_SAMPLE_PIXELS:
        rows = max(1, _CM_SAMPLE_PIXELS // w)
        band = labels[max(0, (h - rows) // 2) :][:rows]
        cm = len(_cmcoder.encode_indices(band, bits))
        if cm > _CM_SAMPLE_MIN_GAIN * len(_pack(band, bits)):
            return [(CODER_STORED, True, packed), (CODER_ZLIB, True, zlib.compress(packed, 6))]
    return [(CODER_STORED, True, packed), (CODER_CM, False, _cmcoder.encode_indices(labels, bits))]


def encode(palette: Any, labels: Any, *, mode: str, icc_profile: bytes | None = None) -> bytes:
    """Encode a palette and an index map as a ``.kmq`` version 2 file.

    The index map is coded by kmq's context-mixing arithmetic coder
    (coder 4, ``cm``), or stored packed when that is smaller (noise; see
    the module docstring for the measurements).

    Parameters
    ----------
    palette : array_like
        ``(K, C)`` uint8, 1 <= K <= 65536, C = channels of ``mode``. Other
        integer dtypes are accepted if every value is in 0..255.
    labels : array_like
        ``(H, W)`` integer array (typically uint8 or uint16), H, W >= 1,
        every value in ``0 .. K-1``.
    mode : {"L", "LA", "RGB", "RGBA"}
        Colour mode; fixes C = 1, 2, 3 or 4.
    icc_profile : bytes, optional
        An ICC profile to embed (the ``iccp`` optional field).

    Returns
    -------
    bytes
        The complete file. :func:`decode` gives back exactly ``palette``,
        ``labels`` (as uint8 if K <= 256, else uint16) and ``icc_profile``.

    Raises
    ------
    UsageError
        If an argument has the wrong type, shape, dtype or range.
    """
    pal, channels = _validate_palette(palette, mode)
    k = pal.shape[0]
    lab = _validate_labels(labels, k)
    fields = _encode_fields(icc_profile)
    height, width = lab.shape
    bits = _bits_for(k)
    try:
        coder, packed, payload = min(_v2_candidates(lab, bits), key=lambda c: len(c[2]))
    except MemoryError:
        raise LimitError(f"not enough memory to encode a {width}x{height} .kmq image") from None
    if len(payload) > _MAX_U32:
        raise UsageError(
            f"the {width}x{height} image's coded indices take {len(payload):,} bytes, "
            f"more than the .kmq format's 4 GiB - 1 payload limit"
        )
    return _assemble(
        channels, k, width, height, coder, packed, pal.tobytes(), payload, version=2, fields=fields
    )


def _encode_v1(palette: Any, labels: Any, *, mode: str) -> bytes:
    """Encode a palette and an index map as a ``.kmq`` version 1 file.

    The index stream is tried packed and unpacked, stored and compressed
    with zlib, bz2 and LZMA2; the smallest result is written (see the
    module docstring for the measurements behind this choice).

    Parameters
    ----------
    palette : array_like
        ``(K, C)`` uint8, 1 <= K <= 65536, C = channels of ``mode``. Other
        integer dtypes are accepted if every value is in 0..255.
    labels : array_like
        ``(H, W)`` integer array (typically uint8 or uint16), H, W >= 1,
        every value in ``0 .. K-1``.
    mode : {"L", "LA", "RGB", "RGBA"}
        Colour mode; fixes C = 1, 2, 3 or 4.

    Returns
    -------
    bytes
        The complete file. :func:`decode` gives back exactly ``palette`` and
        ``labels`` (labels as uint8 if K <= 256, else uint16).

    Raises
    ------
    UsageError
        If an argument has the wrong type, shape, dtype or range.
    """
    pal, channels = _validate_palette(palette, mode)
    k = pal.shape[0]
    lab = _validate_labels(labels, k)
    height, width = lab.shape
    bits = _bits_for(k)
    best = min(_candidates(lab, bits), key=lambda c: len(c[2]))  # first of equals
    coder, packed, payload = best
    if len(payload) > _MAX_U32:
        raise UsageError(
            f"the {width}x{height} image's coded indices take {len(payload):,} bytes, "
            f"more than the .kmq format's 4 GiB - 1 payload limit"
        )
    return _assemble(channels, k, width, height, coder, packed, pal.tobytes(), payload)


def decode(data: bytes, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Container:
    """Decode a ``.kmq`` file.

    Validates every header field and the file size before allocating
    anything, then the CRC-32, then decompresses with a bound so a
    malicious payload cannot expand beyond the expected size.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    max_pixels : int or None, optional
        Refuse images with more pixels (default :data:`DEFAULT_MAX_PIXELS`,
        178,956,970). ``None`` disables the limit for trusted files.

    Returns
    -------
    Container
        ``palette`` ``(K, C)`` uint8, ``labels`` ``(H, W)`` uint8 if
        K <= 256 else uint16, and ``mode``.

    Raises
    ------
    DecodeError
        For anything wrong in the data: not a ``.kmq`` file, unsupported
        version, bad header field, truncation, trailing bytes, CRC mismatch,
        corrupt or wrong-sized payload, an index >= K.
    LimitError
        If the image has more than ``max_pixels`` pixels (or cannot be
        held in memory).
    """
    _check_max_pixels(max_pixels)
    mv = _as_buffer(data)
    hdr = _parse_header(mv, max_pixels)
    itemsize = 1 if hdr.k <= 256 else 2
    if max(hdr.index_length, hdr.pixels * itemsize) >= sys.maxsize:
        raise LimitError(
            f"a {hdr.width}x{hdr.height} .kmq image ({hdr.pixels:,} pixels) is too "
            "large to hold in memory on this machine"
        )
    _check_crc(mv, hdr)
    end = hdr.file_size - CRC_SIZE
    p0 = hdr.header_length
    p1 = p0 + hdr.palette_length
    p2 = p1 + hdr.fields_length
    fields = _parse_fields(mv[p1:p2])
    try:
        palette = np.frombuffer(mv[p0:p1], np.uint8).reshape(hdr.k, hdr.channels).copy()
        if hdr.coder_id == CODER_CM:
            labels = _decode_cm(hdr, mv[p2:end])
        else:
            raw = _decompress(hdr, mv[p2:end])
            labels = _unpack(raw, hdr.width, hdr.height, hdr.bits_per_index, hdr.packed)
    except MemoryError:
        raise LimitError(
            f"not enough memory to decode a {hdr.width}x{hdr.height} .kmq image "
            f"({hdr.pixels:,} pixels)"
        ) from None
    if hdr.bits_per_index:
        hi = int(labels.max())
        if hi >= hdr.k:
            r, c = np.unravel_index(int(np.argmax(labels >= hdr.k)), labels.shape)
            raise DecodeError(
                f"corrupt .kmq file: index {int(labels[r, c])} at row {r}, column {c} "
                f"is not below K = {hdr.k} (the palette has only {hdr.k} colours)"
            )
    return Container(palette=palette, labels=labels, mode=hdr.mode, icc_profile=fields.get(FIELD_ICC))


def _decode_cm(hdr: Header, payload: memoryview) -> np.ndarray:
    """Decode a cm payload into (H, W) labels, uint8 if K <= 256 else uint16."""
    from kmq import _cmcoder

    labels, read = _cmcoder.decode_indices(payload, hdr.width, hdr.height, hdr.bits_per_index)
    # The decoder reads 4 bytes ahead; a writer's last byte is read 3 bytes
    # before the decoder stops, so needing more means the payload is short.
    if read > len(payload) + 3:
        raise DecodeError(
            f"corrupt .kmq file: the cm payload ends early ({len(payload)} bytes; decoding "
            f"the {hdr.width}x{hdr.height} indices needed {read - 3})"
        )
    return labels.astype(np.uint8) if hdr.k <= 256 else labels

