"""The Python API end to end: compress, Compressed, ColorQuantizer, exports."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import ColorQuantizer, OutputError, UsageError


@pytest.fixture(scope="module")
def compressed16(photo):
    # The RGB engine: k-means and mapping on sRGB values, undithered.
    return kmq.compress(photo, 16, seed=0, space="rgb", dither=0)


def test_compress_shapes_and_types(photo, compressed16):
    c = compressed16
    assert c.palette.shape == (16, 3) and c.palette.dtype == np.uint8
    assert c.labels.shape == photo.shape[:2] and c.labels.dtype == np.uint8
    assert c.mode == "RGB" and c.k == 16 and not c.lossless
    assert len(np.unique(c.labels)) == 16
    assert c.reconstruct().shape == photo.shape
    np.testing.assert_array_equal(c.reconstruct(), c.palette[c.labels])
    assert c.to_pil().mode == "P"  # K <= 256: the palette image
    np.testing.assert_array_equal(np.asarray(c.to_pil().convert("RGB")), c.reconstruct())


def test_every_pixel_maps_to_its_nearest_palette_entry(photo, compressed16):
    c = compressed16
    pixels = photo.reshape(-1, 3).astype(np.int64)
    d2 = ((pixels[:, None, :] - c.palette[None].astype(np.int64)) ** 2).sum(-1)
    assert (d2[np.arange(len(pixels)), c.labels.reshape(-1)] == d2.min(1)).all()


def test_same_seed_same_result_bit_for_bit(photo):
    a = kmq.compress(photo, 12, seed=7)
    b = kmq.compress(photo, 12, seed=7)
    assert a == b
    assert a.palette.tobytes() == b.palette.tobytes()


def test_lossless_when_k_covers_the_colours():
    image = np.zeros((4, 5, 3), np.uint8)
    image[1] = (10, 20, 30)
    image[2:, 2:] = (200, 100, 0)
    c = kmq.compress(image, 3, seed=0)
    assert c.lossless and c.k == 3 and c.n_colors_in == 3
    assert sorted(map(tuple, c.palette.tolist())) == [(0, 0, 0), (10, 20, 30), (200, 100, 0)]
    np.testing.assert_array_equal(c.reconstruct(), image)
    bigger = kmq.compress(image, 256, seed=0)
    assert bigger.lossless and bigger.k == 3


def test_k_one_gives_the_mean_colour():
    image = np.array([[[0, 0, 0], [10, 20, 30]]], np.uint8)
    c = kmq.compress(image, 1, seed=0, space="rgb")
    assert c.palette.tolist() == [[5, 10, 15]]
    assert c.labels.tolist() == [[0, 0]]


def test_large_k_uses_uint16_labels(photo):
    n_colors = len(np.unique(photo.reshape(-1, 3), axis=0))
    assert n_colors > 400
    c = kmq.compress(photo, 300, seed=0)
    assert c.labels.dtype == np.uint16 and c.k == 300
    assert int(c.labels.max()) < 300


def test_grayscale_quantized_as_one_channel(photo):
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    c = kmq.compress(gray, 8, seed=0)
    assert c.mode == "L" and c.palette.shape == (8, 1)
    assert c.reconstruct().shape == gray.shape
    decoded = Image.open(io.BytesIO(c.to_bytes("png")))
    np.testing.assert_array_equal(np.asarray(decoded.convert("L")), c.reconstruct())


def test_transparent_pixels_share_one_entry():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # hidden colours stay random
    c = kmq.compress(rgba, 8, seed=0)
    assert c.mode == "RGBA" and c.palette.shape == (8, 4)
    transparent = c.labels[:10]
    assert len(np.unique(transparent)) == 1
    entry = c.palette[transparent[0, 0]]
    assert entry.tolist() == [0, 0, 0, 0]
    assert (c.palette[np.unique(c.labels[10:])][:, 3] == 255).all()


def test_sample_is_a_draw_of_pixels_without_replacement(photo, monkeypatch):
    """The sample's colour counts: n_sample pixels in all, each colour at
    most as often as in the image (drawn without replacement), only the
    image's colours; the same draw for the same seed."""
    from kmq import _quantize
    from kmq._engine.histogram import color_histogram, pack_colors

    seen = []
    real = _quantize.fit_colors
    monkeypatch.setattr(_quantize, "fit_colors", lambda colors, counts, *a, **kw: seen.append((colors.copy(), counts.copy())) or real(colors, counts, *a, **kw))
    kmq.compress(photo, 16, seed=0, sample=0.25, dither=0)
    kmq.compress(photo, 16, seed=0, sample=0.25, dither=0)
    full = color_histogram(pack_colors(photo.reshape(-1, 3)), 3)
    (colors, counts), (colors2, counts2) = seen
    assert counts.sum() == round(0.25 * photo.shape[0] * photo.shape[1]) and (counts > 0).all()
    where = np.searchsorted(full.keys, pack_colors(colors))
    assert np.array_equal(full.keys[where], pack_colors(colors))
    assert (counts <= full.counts[where]).all()
    assert np.array_equal(colors, colors2) and np.array_equal(counts, counts2)


def test_sample_fits_on_a_fraction_and_maps_every_pixel(photo):
    c = kmq.compress(photo, 16, seed=0, sample=0.1)
    assert c.labels.shape == photo.shape[:2] and c.k == 16
    full = kmq.compress(photo, 16, seed=0)
    error_sampled = kmq.metrics.mse(photo, c.reconstruct())
    error_full = kmq.metrics.mse(photo, full.reconstruct())
    assert error_sampled < 1.25 * error_full
    assert kmq.compress(photo, 16, seed=0, sample=0.1) == c


@pytest.mark.parametrize("k, bit_depth", [(2, 1), (3, 2), (4, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
def test_indexed_png_smallest_bit_depth_and_exact_pixels(photo, k, bit_depth):
    c = kmq.compress(photo, k, seed=0)
    data = c.to_bytes("png")
    assert data[24] == bit_depth  # IHDR bit depth
    assert data[25] == 3  # colour type 3: indexed
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "P"
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), c.reconstruct())


def test_indexed_png_with_alpha_has_trns(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    rgba[:, 40:60, 3] = 128
    c = kmq.compress(rgba, 8, seed=0)
    data = c.to_bytes("png")
    assert b"tRNS" in data
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    np.testing.assert_array_equal(decoded, c.reconstruct())


@pytest.mark.parametrize("fmt", ["gif", "webp", "bmp", "tiff"])
def test_exports_decode_to_the_same_pixels(photo, compressed16, fmt):
    decoded = Image.open(io.BytesIO(compressed16.to_bytes(fmt)))
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), compressed16.reconstruct())


def test_bmp_and_tiff_keep_alpha_as_documented(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    rgba[:, 40:60, 3] = 128
    c = kmq.compress(rgba, 8, seed=0)
    rebuilt = c.reconstruct()
    # TIFF: RGBA, read back exactly.
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(c.to_bytes("tiff")))), rebuilt)
    # BMP: 32-bit pixels, BGRA, bottom row first, alpha in the fourth byte
    # (a 40-byte header says nothing of it, so Pillow reads RGB).
    data = c.to_bytes("bmp")
    offset, header, height, bits = (int.from_bytes(data[a:b], "little") for a, b in ((10, 14), (14, 18), (22, 26), (28, 30)))
    assert (header, height, bits) == (40, photo.shape[0], 32)
    pixels = np.frombuffer(data[offset:], np.uint8).reshape(photo.shape[0], photo.shape[1], 4)[::-1]
    np.testing.assert_array_equal(pixels[:, :, [2, 1, 0, 3]], rebuilt)
    assert Image.open(io.BytesIO(data)).mode == "RGB"


def test_jpeg_export_is_the_rebuilt_image(photo, compressed16):
    decoded = np.asarray(Image.open(io.BytesIO(compressed16.to_bytes("jpeg")))).astype(int)
    rebuilt = compressed16.reconstruct()
    assert decoded.shape == rebuilt.shape
    # Lossy, but far closer to the 16-colour image than to the original.
    assert np.abs(decoded - rebuilt).mean() < 0.5 * np.abs(decoded - photo).mean()


def test_gif_keeps_binary_transparency():
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[:, 3:] = (255, 0, 0, 255)
    c = kmq.compress(rgba, 2, seed=0)
    decoded = np.asarray(Image.open(io.BytesIO(c.to_bytes("gif"))).convert("RGBA"))
    assert (decoded[:, :3, 3] == 0).all() and (decoded[:, 3:] == (255, 0, 0, 255)).all()


def test_gif_thresholds_soft_alpha():
    # Alphas 0, 60, 128 and 255: GIF keeps one transparent index; below the
    # threshold (default 128) is transparent, the rest opaque.
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, :, :3] = (200, 10, 10)
    rgba[:, 0, 3], rgba[:, 1, 3], rgba[:, 2, 3], rgba[:, 3, 3] = 0, 60, 128, 255
    c = kmq.compress(rgba, 4, seed=0)
    assert c.lossless and sorted(c.palette[:, 3].tolist()) == [0, 60, 128, 255]

    def alpha_of(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[0, :, 3].tolist()

    assert alpha_of(c.to_bytes("gif")) == [0, 0, 255, 255]
    assert alpha_of(c.to_bytes("gif", alpha_threshold=200)) == [0, 0, 0, 255]
    assert alpha_of(c.to_bytes("gif", alpha_threshold=0)) == [255, 255, 255, 255]
    with pytest.raises(kmq.UsageError, match=r"alpha threshold must be a whole number from 0 to 255, got 256"):
        c.to_bytes("gif", alpha_threshold=256)


def test_palette_formats_need_k_at_most_256(photo):
    c = kmq.compress(photo, 300, seed=0)
    for fmt in ("png", "gif"):
        with pytest.raises(OutputError, match=rf"{fmt.upper()} holds at most 256 colours, got K=300; use \.kmq"):
            c.to_bytes(fmt)


def test_jpeg_refuses_alpha():
    c = kmq.compress(np.zeros((2, 2, 4), np.uint8), 1, seed=0)
    with pytest.raises(OutputError, match=r"JPEG cannot store transparency"):
        c.to_bytes("jpeg")


def test_save_follows_extension_and_never_overwrites_input(photo_png, tmp_path):
    c = kmq.compress(photo_png, 8, seed=0)
    out = tmp_path / "out.png"
    written = c.save(out)
    assert out.stat().st_size == written
    with pytest.raises(OutputError, match=r"refusing to overwrite the input"):
        c.save(photo_png)
    with pytest.raises(OutputError, match=r"already exists"):
        c.save(out, force=False)
    with pytest.raises(OutputError, match=r"cannot tell the output format"):
        c.save(tmp_path / "out.xyz")


@pytest.mark.parametrize("k", [0, -3, 65537, 2.5, "16", True])
def test_bad_k(photo, k):
    with pytest.raises(UsageError, match=r"number of colours K"):
        kmq.compress(photo, k)


@pytest.mark.parametrize("sample", [0, 1.5, -0.1])
def test_bad_sample(photo, sample):
    with pytest.raises(UsageError, match=r"sample must be a fraction of the pixels in \(0, 1\]"):
        kmq.compress(photo, 4, sample=sample)


def test_color_quantizer_contract(photo):
    q = ColorQuantizer(8, seed=1)
    assert q.fit(photo) is q
    assert q.palette_.shape == (8, 3)
    labels = q.transform(photo)
    assert labels.shape == photo.shape[:2]
    np.testing.assert_array_equal(q.inverse_transform(labels), q.palette_[labels])
    np.testing.assert_array_equal(ColorQuantizer(8, seed=1).fit_transform(photo), labels)
    # A palette learned on one image maps another.
    other = photo[::-1].copy()
    assert q.transform(other).shape == other.shape[:2]
    with pytest.raises(UsageError, match=r"fitted on a RGB image, got a L image"):
        q.transform(photo[:, :, 0])
    with pytest.raises(UsageError, match=r"not fitted yet"):
        ColorQuantizer(4).transform(photo)


def test_compressed_equality_and_repr(compressed16):
    copy = kmq.Compressed(compressed16.palette.copy(), compressed16.labels.copy(), "RGB")
    assert copy == compressed16
    copy.labels[0, 0] ^= 1
    assert copy != compressed16
    assert repr(compressed16) == "<kmq.Compressed 128x96 RGB K=16>"


def test_metrics_match_the_kmeans_inertia(photo):
    c = kmq.compress(photo, 16, seed=0, space="rgb", dither=0)
    m = c.metrics()
    n = photo.shape[0] * photo.shape[1]
    # The distortion J is the pixel-space inertia of the uint8 palette per pixel.
    sse = ((photo.astype(np.int64) - c.reconstruct()) ** 2).sum()
    assert m.distortion == pytest.approx(sse / n, rel=1e-12)
    # The reported inertia is that same error, summed: the objective k-means
    # minimises, measured on the palette actually stored.
    assert c.inertia == pytest.approx(float(sse), rel=1e-12)
    assert m.k == 16 and m.index_bits == 4 and m.raw_bytes == n * 3


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [1, 7, 256, 300])
def test_save_load_round_trip_is_exact(photo, tmp_path, channels, k):
    image = np.dstack([photo, photo[:, :, :1] // 2 + 100])[:, :, :channels] if channels != 3 else photo
    if channels == 1:
        image = image[:, :, 0]
    c = kmq.compress(image, k, seed=0)
    path = tmp_path / "x.kmq"
    c.save(path)
    loaded = kmq.load(path)
    assert loaded == c
    assert loaded.mode == c.mode and loaded.labels.dtype == c.labels.dtype
    np.testing.assert_array_equal(kmq.decompress(path), c.palette[c.labels].reshape(c.reconstruct().shape))
    np.testing.assert_array_equal(kmq.decompress(path.read_bytes()), c.reconstruct())
    if c.k <= 256:
        png = np.asarray(Image.open(io.BytesIO(c.to_bytes("png"))).convert(c.mode))
        np.testing.assert_array_equal(png, c.reconstruct())


def _png_chunks(data: bytes) -> dict:
    """{chunk type: [payloads]} of a PNG, checking each chunk's CRC."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, payload = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        chunks.setdefault(kind, []).append(payload)
        at += 12 + length
    assert at == len(data) and kind == b"IEND"
    return chunks


@pytest.mark.parametrize("channels, k, width", [(3, 1, 33), (3, 2, 33), (3, 4, 31), (3, 16, 29), (3, 256, 40), (1, 7, 37), (2, 5, 30), (4, 200, 41)])
def test_threaded_png_is_the_same_image_as_pillows(monkeypatch, channels, k, width):
    """Large indexed PNGs are deflated on several cores: the file must hold
    exactly what Pillow's would (bit depth, PLTE, tRNS, every index), its
    chunks' CRCs and its zlib stream's Adler-32 must check, and the rows must
    decompress to filter type 0 plus the packed indices."""
    import zlib

    from kmq import _container, _io

    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, size=(k, channels), dtype=np.uint8)
    if channels in (2, 4):
        palette[:, -1] = rng.choice([0, 128, 255], size=k)
    height = 57
    labels = rng.integers(0, k, size=(height, width), dtype=np.uint8)
    labels[:20] = labels[:1]  # repeated rows: matches across the cuts
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]

    pillow = _io.encode_export(palette, labels, mode, "png")
    monkeypatch.setattr(_io, "_THREADED_PNG_MIN_PIXELS", 0)
    monkeypatch.setattr(_io, "_PNG_RUN_BYTES", 64)  # several runs of these few rows
    from kmq._engine._parallel import threads_limited

    with threads_limited(3):
        threaded = _io.encode_export(palette, labels, mode, "png")
    with threads_limited(1):  # the runs are fixed by the size: same bytes on one thread
        assert _io.encode_export(palette, labels, mode, "png") == threaded
    assert threaded != pillow  # the threaded writer really ran

    ours, theirs = _png_chunks(threaded), _png_chunks(pillow)
    assert set(ours) == set(theirs)
    assert ours[b"IHDR"] == theirs[b"IHDR"]
    assert ours[b"PLTE"] == theirs[b"PLTE"]
    assert ours.get(b"tRNS") == theirs.get(b"tRNS")
    bits = ours[b"IHDR"][0][8]
    rows = np.frombuffer(zlib.decompress(b"".join(ours[b"IDAT"])), dtype=np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()
    assert rows[:, 1:].tobytes() == _container._pack(labels, bits)
    a, b = Image.open(io.BytesIO(threaded)), Image.open(io.BytesIO(pillow))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.getpalette() == b.getpalette() and a.info.get("transparency") == b.info.get("transparency")


def test_same_bytes_whatever_the_thread_count(sample_pixels, monkeypatch):
    """The engine splits its passes over threads; the result must not
    depend on how many: a photograph with coarse histogram levels (72k
    colours) on one thread and on several, each a tiny share of points."""
    from kmq._engine import _parallel

    outputs = []
    for cores in (1, 2, 3):
        monkeypatch.setattr(_parallel, "_thread_limit", cores)
        monkeypatch.setattr(_parallel, "_MIN_POINTS_PER_THREAD", 64)
        outputs.append(kmq.compress(sample_pixels, 64, seed=3).to_bytes("png"))
    assert outputs[0] == outputs[1] == outputs[2]


def _same(a, b) -> bool:
    return (
        a == b and a.labels.dtype == b.labels.dtype and a.n_iter == b.n_iter and a.inertia == b.inertia
        and a.mean_error == b.mean_error and a.quality == b.quality and a.quality_note == b.quality_note
    )


def test_a_kept_image_analysis_gives_compress_results_bit_for_bit(sample_pixels, photo):
    """kmq serve keeps one ImageAnalysis per image and compresses with it
    again and again: each result is compress()'s, whatever came before
    (nothing that reads the shared parts writes to them)."""
    from kmq._io import read_image
    from kmq._quantize import ImageAnalysis, _compress

    rgba = np.dstack([photo, np.tile(np.arange(0, 256, 2, dtype=np.uint8), (96, 1))])
    rgba[:20, :20, 3] = 0
    images = {
        "RGB": sample_pixels,  # 72k colours: the coarse-to-fine fit
        "RGBA": rgba,
        "LA": np.ascontiguousarray(rgba[:, :, [0, 3]]),
        "L": np.ascontiguousarray(photo[:, :, 0]),
    }
    defaults = dict(seed=1, sample=None, n_init=2, max_iter=300, tol=1e-4, init="k-means++", space="oklab", dither=1.0, quality=None)
    settings = [{}, dict(space="rgb", dither=0), dict(space="lab", dither=0.5), dict(sample=0.3), dict(quality=(0, 70))]
    for mode, pixels in images.items():
        source = read_image(pixels)
        analysis = ImageAnalysis(source.pixels)
        for options in settings:
            for k in (5, 40):
                kept = _compress(source, k, {**defaults, **options}, analysis)
                assert _same(kept, kmq.compress(source, k, **{**defaults, **options})), (mode, options, k)
                assert kept.mode == mode


def test_an_exception_from_progress_stops_compress_at_that_stage(photo):
    """kmq serve stops a compression whose client has gone this way."""
    stages = []

    class Stop(Exception):
        pass

    def progress(stage):
        stages.append(stage)
        if stage == "dithering":
            raise Stop()

    with pytest.raises(Stop):
        kmq.compress(photo, 8, progress=progress)
    assert stages[0] == "histogram" and stages[1].startswith("k-means K=8") and stages[-1] == "dithering"


def test_dither_cell_median_is_numpys_to_the_bit():
    from kmq._quantize import _median

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 16, 17, 255, 256):
        for _ in range(20):
            values = rng.random(n) * 10
            assert _median(values) == float(np.median(values)), n


@pytest.mark.parametrize("channels", [1, 3])
def test_few_colours_stay_exact_when_dithered(channels):
    # An image of <= K colours is lossless, dithered or not (the default dithers).
    # Neighbouring shades (one level apart), as an anti-aliased edge has:
    # closer than the dithering grid's cell.
    rng = np.random.default_rng(4)
    if channels == 3:
        colors = np.stack([100 + np.arange(12) // 3, np.full(12, 100), 100 + np.arange(12) % 3], axis=1).astype(np.uint8)
    else:
        colors = (100 + np.arange(12))[:, None].astype(np.uint8)
    yy, xx = np.mgrid[0:64, 0:96]
    image = colors[(xx // 8 + yy // 5 + (rng.random((64, 96)) < 0.2)) % 12]
    image = image[:, :, 0] if channels == 1 else image
    c = kmq.compress(image, 16, seed=0)
    assert c.lossless and c.dither > 0
    np.testing.assert_array_equal(c.reconstruct(), image)
