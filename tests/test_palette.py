"""A shared palette: merged histograms are exact, the palette is the one of
all pixels pooled, .gpl files round-trip, and compress --palette maps to it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq import palette as kp
from kmq._cli import main
from kmq._engine.histogram import color_histogram, pack_colors


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def frames(in_tmp, photo):
    """Three 32x128 strips of the photo as PNGs; returns (names, pixels stacked)."""
    strips = [np.ascontiguousarray(photo[32 * i : 32 * (i + 1)]) for i in range(3)]
    names = []
    for i, strip in enumerate(strips):
        Image.fromarray(strip).save(f"f{i}.png")
        names.append(f"f{i}.png")
    return names, np.concatenate(strips, axis=0)


def test_merged_histogram_is_the_histogram_of_the_union(frames):
    names, stacked = frames
    total = None
    for name in names:
        part = kp.image_histogram(name)
        total = part if total is None else kp.merge_histograms(total, part)
    pooled = color_histogram(pack_colors(stacked.reshape(-1, 3)), 3)
    assert np.array_equal(total[0], pooled.keys) and np.array_equal(total[1], pooled.counts) and total[2] == 3


def test_rgb_and_rgba_histograms_merge_as_rgba():
    rgb = (np.array([0x010203], np.uint32), np.array([5], np.int64), 3)
    rgba = (np.array([0x01020300, 0x010203FF], np.uint32), np.array([1, 2], np.int64), 4)
    keys, counts, channels = kp.merge_histograms(rgb, rgba)
    assert channels == 4 and keys.tolist() == [0x01020300, 0x010203FF] and counts.tolist() == [1, 7]


@pytest.mark.parametrize("jobs, space", [(1, None), (2, None), (1, "rgb"), (1, "lab")])
def test_palette_is_the_one_of_all_pixels_pooled(frames, jobs, space):
    names, stacked = frames
    palette, n_images, n_colors = kp.fit_palette(names, 8, seed=0, jobs=jobs, space=space)
    # The fit compress runs, in its working space (default Oklab), on all the pixels.
    expected = kmq.ColorQuantizer(8, seed=0, space=space or "oklab").fit(stacked)
    assert np.array_equal(palette, expected.palette_)
    assert (n_images, n_colors) == (3, expected.n_colors_in_)


def test_gpl_round_trip_rgb_and_rgba(in_tmp):
    rgb = np.array([[0, 0, 0], [255, 128, 7]], np.uint8)
    kp.write_palette("p.gpl", rgb)
    assert (in_tmp / "p.gpl").read_text() == "GIMP Palette\nName: kmq K=2\nColumns: 2\n#\n  0   0   0\t#000000\n255 128   7\t#ff8007\n"
    assert np.array_equal(kp.read_palette("p.gpl"), rgb)
    rgba = np.array([[0, 0, 0, 0], [10, 20, 30, 200]], np.uint8)
    kp.write_palette("q.gpl", rgba)
    assert "Channels: RGBA\n" in (in_tmp / "q.gpl").read_text()
    assert np.array_equal(kp.read_palette("q.gpl"), rgba)


def test_cli_palette_then_compress_with_it(capsys, frames, in_tmp):
    names, stacked = frames
    code, out, err = run(capsys, "palette", *names, "-k", "8", "--seed", "0", "-o", "shared.gpl", "-j", "1", "--space", "rgb")
    assert code == 0, err
    assert out.startswith("kmq: 8 colours (RGB) fitted to 3 images (")
    shared = kp.read_palette("shared.gpl")
    code, out, err = run(capsys, "compress", *names, "--palette", "shared.gpl", "-o", "out", "-j", "1", "-q",
                         "--space", "rgb", "--nofs")
    assert code == 0, err
    for i in range(3):
        loaded = kmq.load(in_tmp / "out" / f"f{i}-k8.kmq")
        assert np.array_equal(loaded.palette, shared)
        # Each pixel is mapped to its nearest palette colour.
        pixels = stacked[32 * i : 32 * (i + 1)].reshape(-1, 1, 3).astype(int)
        nearest = np.argmin(((pixels - shared[None].astype(int)) ** 2).sum(axis=2), axis=1)
        d_best = ((pixels[:, 0] - shared[nearest].astype(int)) ** 2).sum(axis=1)
        d_kmq = ((pixels[:, 0] - shared[loaded.labels.reshape(-1)].astype(int)) ** 2).sum(axis=1)
        assert np.array_equal(d_kmq, d_best)


@pytest.mark.parametrize("k", [8, 16, 32])
def test_compress_palette_maps_as_compress_does(capsys, frames, in_tmp, k):
    """By default an image is mapped to a shared palette as compress maps
    it to its own: fitted on one image alone, the shared palette gives
    exactly compress's image (Oklab, dithered); a palette fitted with
    --nofs and mapped with --nofs gives compress --nofs's image, each pixel
    on the entry nearest in the fit's space (Oklab, chroma weighted above 16
    colours, above 8 when dithered: kmq._quantize.working_space)."""
    from kmq._engine.colorspace import to_space
    from kmq._quantize import working_space

    names, stacked = frames
    Image.fromarray(stacked).save("all.png")
    for options, gpl in (([], "dithered.gpl"), (["--nofs"], "plain.gpl")):
        code, _, err = run(capsys, "palette", "all.png", "-k", str(k), "--seed", "0", "-o", gpl, *options)
        assert code == 0, err
        code, _, err = run(capsys, "compress", "all.png", "--palette", gpl, "-o", gpl[:-4], "-q", *options)
        assert code == 0, err
    shared, shared_plain = kp.read_palette("dithered.gpl"), kp.read_palette("plain.gpl")
    # Only 9-16 colours are fitted differently for dithering.
    assert np.array_equal(shared, shared_plain) == (k != 16)
    dithered = kmq.load(in_tmp / "dithered" / f"all-k{k}.kmq")
    plain = kmq.load(in_tmp / "plain" / f"all-k{k}.kmq")
    assert np.array_equal(dithered.palette, shared) and np.array_equal(plain.palette, shared_plain)
    assert np.array_equal(dithered.reconstruct(), kmq.compress("all.png", k, seed=0).reconstruct())
    assert np.array_equal(plain.reconstruct(), kmq.compress("all.png", k, seed=0, dither=0).reconstruct())
    assert not np.array_equal(dithered.labels, plain.labels)
    space = working_space("oklab", k, 0.0)
    assert space == ("oklab" if k <= 16 else "oklab-chroma")
    ok_pixels = to_space(stacked.reshape(-1, 3), space)
    d2 = ((ok_pixels[:, None, :] - to_space(shared_plain, space)[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(d2[np.arange(len(d2)), plain.labels.reshape(-1)], d2.min(axis=1))


def test_fit_palette_dither_is_the_quantizers(frames, in_tmp):
    """fit_palette's dither picks the fit compress would make: at 16 colours
    the dithered (default) and undithered palettes differ, and each equals
    the ColorQuantizer fit with that dithering."""
    names, stacked = frames
    Image.fromarray(stacked).save("all.png")
    default, _, _ = kp.fit_palette(["all.png"], 16, seed=0)
    plain, _, _ = kp.fit_palette(["all.png"], 16, seed=0, dither=0)
    assert not np.array_equal(default, plain)
    for dither, palette in ((0.75, default), (0.0, plain)):
        fitted = kmq.ColorQuantizer(16, seed=0, dither=dither).fit(stacked)
        assert np.array_equal(np.sort(fitted.palette_, axis=0), np.sort(palette, axis=0))
    with pytest.raises(ValueError, match="dither"):
        kp.fit_palette(["all.png"], 16, dither=2)


def test_palette_dither_options(capsys, frames, in_tmp):
    names, stacked = frames
    Image.fromarray(stacked).save("all.png")
    code, _, err = run(capsys, "palette", "all.png", "-o", "p.gpl", "--dither", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--dither" in err, err
    code, _, err = run(capsys, "palette", "all.png", "-o", "p.gpl", "--dither", "0.5", "--nofs")
    assert code == 2 and "not allowed with argument" in err, err
    assert not (in_tmp / "p.gpl").exists()


def test_alpha_image_against_an_rgb_palette_is_one_error(capsys, in_tmp, photo):
    kp.write_palette("p.gpl", np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save("a.png")
    code, out, err = run(capsys, "compress", "a.png", "--palette", "p.gpl", "-q")
    assert code == 2
    assert err.strip() == (
        "kmq: error: a.png: this image has transparency and the palette has no alpha (RGB); fit an RGBA palette"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("JASC-PAL\n", "is not a GIMP palette (.gpl): its first line must be 'GIMP Palette'"),
        ("GIMP Palette\n1 2\n", "line 2: expected 3 numbers 0..255, got '1 2'"),
        ("GIMP Palette\n1 2 300\n", "line 2: expected 3 numbers 0..255, got '1 2 300'"),
        ("GIMP Palette\nName: x\n", "has no colours"),
    ],
)
def test_bad_palette_files(capsys, in_tmp, photo_png, text, message):
    (in_tmp / "bad.gpl").write_text(text)
    code, _, err = run(capsys, "compress", str(photo_png), "--palette", "bad.gpl")
    assert code == 4
    assert message in err and len(err.strip().splitlines()) == 1
