"""The figures of kmq.plot and ``kmq plot``: drawn headless, checked for what
they show (panels, data, colours) and how they are written."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import kmq
import kmq.plot
from kmq import OutputError, UsageError
from kmq._cli import main
from kmq.metrics import psnr


@pytest.fixture(scope="module")
def photo_sweep(photo):
    """The 96x128 crop compressed for K = 2..32, measured."""
    return kmq.plot.sweep(photo, [2, 4, 8, 16, 32], seed=0)


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def line(fig, label):
    matches = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == label]
    assert len(matches) == 1, [ln.get_label() for ax in fig.axes for ln in ax.get_lines()]
    return matches[0]


# -- compare ------------------------------------------------------------------


def test_compare_has_the_original_and_one_panel_per_k(photo):
    fig = kmq.plot.compare(photo, ks=[2, 3, 6, 16], seed=0)
    assert isinstance(fig, Figure)
    panels = image_axes(fig)
    assert len(panels) == 5
    assert panels[0].get_title().startswith("Original")
    np.testing.assert_array_equal(np.asarray(panels[0].images[0].get_array()), photo)
    for ax, k in zip(panels[1:], [2, 3, 6, 16]):
        assert ax.get_title().startswith(f"K = {k}\n")
        expected = kmq.compress(photo, k, seed=0).reconstruct()
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)


def test_compare_titles_give_ratio_and_psnr(photo_sweep):
    fig = kmq.plot.compare(photo_sweep, ks=[4, 16])
    titles = [ax.get_title() for ax in image_axes(fig)[1:]]
    for title, k in zip(titles, [4, 16]):
        metrics = photo_sweep[k].metrics
        assert f"{metrics.ratio_to_1:.1f}:1" in title
        assert f"PSNR {metrics.psnr:.1f} dB" in title
    # the ratio follows the tutorials' bit count: 24 bits vs log2(K) + palette
    n = photo_sweep.source.pixels.shape[0] * photo_sweep.source.pixels.shape[1]
    assert f"{24 * n / (n * 4 + 24 * 16):.1f}:1" in titles[1]


def test_compare_of_a_compressed_shows_it_beside_the_original(photo):
    compressed = kmq.compress(photo, 5, seed=7)
    panels = image_axes(kmq.plot.compare(compressed))
    assert len(panels) == 2
    np.testing.assert_array_equal(np.asarray(panels[1].images[0].get_array()), compressed.reconstruct())


def test_a_sweep_is_drawn_without_running_k_means_again(photo_sweep, monkeypatch):
    def no_kmeans(*args, **kwargs):
        raise AssertionError("k-means ran again")

    monkeypatch.setattr("kmq.plot._sweep.compress", no_kmeans)
    monkeypatch.setattr("kmq.plot._draw.compress", no_kmeans)
    assert len(image_axes(kmq.plot.compare(photo_sweep, ks=[2, 8]))) == 3
    kmq.plot.curve(photo_sweep)
    kmq.plot.segments(photo_sweep, k=4)
    kmq.plot.palette(photo_sweep, ks=[2, 32])


def test_compare_lays_many_ks_out_in_rows(photo_sweep):
    fig = kmq.plot.compare(photo_sweep)  # 5 Ks + the original: 2 rows of 3
    rows = {round(ax.get_position().y0, 3) for ax in image_axes(fig)}
    assert len(image_axes(fig)) == 6 and len(rows) == 2


def test_compare_titles_give_the_perceptual_score(photo_sweep, photo):
    fig = kmq.plot.compare(photo_sweep, ks=[4, 16])
    for ax, k in zip(image_axes(fig)[1:], [4, 16]):
        rebuilt = photo_sweep[k].compressed.reconstruct()
        assert ax.get_title().endswith(f" · perceptual {kmq.metrics.perceptual_score(photo, rebuilt):.1f}")


def test_compare_shows_undithered_beside_dithered(photo):
    fig = kmq.plot.compare(photo, ks=[4, 16], dither=(0, 1))
    panels = image_axes(fig)
    assert len(panels) == 6  # per K: the original, undithered, dithered
    rows = sorted({round(ax.get_position().y0, 3) for ax in panels}, reverse=True)
    assert len(rows) == 2
    for row, k in zip((panels[0:3], panels[3:6]), (4, 16)):
        assert row[0].get_title().startswith("Original")
        np.testing.assert_array_equal(np.asarray(row[0].images[0].get_array()), photo)
        for ax, level, name in zip(row[1:], (0.0, 1.0), ("undithered", "dithered")):
            c = kmq.compress(photo, k, seed=0, dither=level)
            np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), c.reconstruct())
            m = c.metrics()
            kmq_bytes, png_bytes = len(c.to_bytes("kmq")), len(c.to_bytes("png"))
            assert ax.get_title() == (
                f"K = {k}, {name}\n"
                f".kmq {kmq.plot._sweep.format_bytes(kmq_bytes)} · PNG {kmq.plot._sweep.format_bytes(png_bytes)}\n"
                f"perceptual {m.perceptual_score:.1f} · PSNR {m.psnr:.1f} dB"
            )
    assert fig._suptitle.get_text() == "<array> at K = 4, 16: undithered and dithered (k-means, seed 0)"


def test_compare_dithering_reuses_a_sweep_at_its_level(photo_sweep, monkeypatch):
    from kmq._quantize import DEFAULT_DITHER
    from kmq.plot import _sweep

    assert photo_sweep.dither == DEFAULT_DITHER == 0.75
    calls = []
    real = _sweep.compress
    monkeypatch.setattr(_sweep, "compress", lambda *a, **kw: calls.append((a[1], kw["dither"])) or real(*a, **kw))
    fig = kmq.plot.compare(photo_sweep, ks=[2, 8], dither=(0, DEFAULT_DITHER))
    assert calls == [(2, 0.0), (8, 0.0)]  # the sweep's own (dithered) results are reused
    titles = [ax.get_title() for ax in image_axes(fig)]
    assert titles[2].startswith("K = 2, dithered 0.75\n") and titles[5].startswith("K = 8, dithered 0.75\n")
    # One level: every panel at it; three levels: three panels a K.
    calls.clear()
    assert len(image_axes(kmq.plot.compare(photo_sweep, ks=[2], dither=0))) == 2 and calls == [(2, 0.0)]
    calls.clear()
    assert len(image_axes(kmq.plot.compare(photo_sweep, ks=[2], dither=[DEFAULT_DITHER]))) == 2 and calls == []
    three = kmq.plot.compare(photo_sweep, ks=[2], dither=(0, 0.5, 1))
    assert [ax.get_title().split("\n")[0] for ax in image_axes(three)[1:]] == [
        "K = 2, undithered", "K = 2, dithered 0.5", "K = 2, dithered"
    ]


def test_sweep_at_a_dithering_level(photo):
    data = kmq.plot.sweep(photo, [4, 8], seed=0, dither=0)
    assert data.dither == 0.0 and [r.compressed.dither for r in data.results] == [0.0, 0.0]
    assert data[8].compressed == kmq.compress(photo, 8, seed=0, dither=0)
    assert kmq.plot.sweep(photo, [4], seed=0).dither == kmq._quantize.DEFAULT_DITHER


@pytest.mark.parametrize(
    "dither, message",
    [((), "dither is empty"), ((0, 0), "must differ"), (2, "from 0 to 1"), ((0, -1), "from 0 to 1"), ("01", "sequence")],
)
def test_bad_dither_levels_are_usage_errors(photo_sweep, dither, message):
    with pytest.raises(UsageError, match=message):
        kmq.plot.compare(photo_sweep, ks=[2], dither=dither)


@pytest.mark.parametrize("ks", [[], [0], [2, 70000], "16"])
def test_bad_ks_are_usage_errors(photo, ks):
    with pytest.raises(UsageError):
        kmq.plot.compare(photo, ks=ks)


# -- curve --------------------------------------------------------------------


def test_curve_data_are_the_sweep_and_monotone(photo_sweep):
    fig = kmq.plot.curve(photo_sweep)
    ks = photo_sweep.ks
    n_pixels = photo_sweep.source.pixels.shape[0] * photo_sweep.source.pixels.shape[1]
    mse = line(fig, "MSE")
    np.testing.assert_array_equal(mse.get_xdata(), ks)
    np.testing.assert_allclose(mse.get_ydata(), [r.metrics.mse for r in photo_sweep.results])
    assert np.all(np.diff(mse.get_ydata()) <= 0), "MSE must not grow with K on the test photo"
    assert np.all(np.diff(line(fig, "PSNR").get_ydata()) >= 0)
    scores = line(fig, "perceptual score")
    np.testing.assert_array_equal(scores.get_xdata(), ks)
    np.testing.assert_allclose(
        scores.get_ydata(),
        [kmq.metrics.perceptual_score(photo_sweep.source.pixels, r.compressed.reconstruct()) for r in photo_sweep.results],
    )
    assert np.all(np.diff(scores.get_ydata()) >= 0)
    # On its own 0-100 axis, beside PSNR's.
    assert scores.axes is not line(fig, "PSNR").axes and scores.axes.get_ylim()[1] == 101
    kmq_bpp = line(fig, ".kmq file").get_ydata()
    np.testing.assert_allclose(kmq_bpp, [8 * r.kmq_bytes / n_pixels for r in photo_sweep.results])
    png_bpp = line(fig, "indexed PNG").get_ydata()
    np.testing.assert_allclose(png_bpp, [8 * r.png_bytes / n_pixels for r in photo_sweep.results])
    # the tutorials' count grows with the index bits: 1, 2, 3, 4, 5 bits + palette
    np.testing.assert_allclose(
        line(fig, "index bits + palette").get_ydata(),
        [np.log2(k) + 24 * k / n_pixels for k in ks],
    )
    assert fig.axes[0].get_xscale() == "log"


def test_curve_has_no_png_point_above_256_colours():
    pixels = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = kmq.plot.sweep(pixels, [2, 300], seed=0)
    assert data[300].png_bytes is None
    fig = kmq.plot.curve(data)
    np.testing.assert_array_equal(line(fig, "indexed PNG").get_xdata(), [2])
    np.testing.assert_array_equal(line(fig, ".kmq file").get_xdata(), [2, 300])


def test_first_k_reaching_a_psnr(photo_sweep):
    psnrs = [r.metrics.psnr for r in photo_sweep.results]
    target = (psnrs[1] + psnrs[2]) / 2  # between K=4 and K=8
    assert photo_sweep.first_k_reaching(target) == 8
    assert photo_sweep.first_k_reaching(max(psnrs) + 1) is None


# -- scatter ------------------------------------------------------------------


def test_scatter_draws_the_sample_and_the_centroids(photo):
    compressed = kmq.compress(photo, 6, seed=0)
    fig = kmq.plot.scatter(compressed, sample_size=500)
    assert [ax.name for ax in fig.axes] == ["3d", "3d"]
    kmq.plot.render_figure(fig)  # 3-D collections settle their colours (depth-sorted) when drawn
    for ax in fig.axes:
        points, halo, centroids = ax.collections
        # Drawn in order, not depth-sorted: the centroids (and their white
        # halo) above every point.
        assert ax.computed_zorder is False
        assert points.get_zorder() < halo.get_zorder() < centroids.get_zorder()
        assert len(halo.get_offsets()) == len(centroids.get_offsets()) == compressed.k
        assert len(points.get_offsets()) == 500
        drawn = np.round(centroids.get_facecolors()[:, :3] * 255).astype(int)
        assert sorted(map(tuple, drawn)) == sorted(map(tuple, compressed.palette.astype(int)))
    # after quantization every point is drawn in one of the 6 palette colours
    after = np.unique(np.round(fig.axes[1].collections[0].get_facecolors()[:, :3] * 255), axis=0)
    assert len(after) <= 6
    assert {tuple(c) for c in after.astype(int)} <= {tuple(c) for c in compressed.palette.astype(int)}
    before = np.unique(np.round(fig.axes[0].collections[0].get_facecolors()[:, :3] * 255), axis=0)
    assert len(before) > 6


def test_scatter_of_a_grayscale_image_is_a_histogram(photo):
    gray = photo.mean(axis=2).astype(np.uint8)
    fig = kmq.plot.scatter(gray, k=4)
    assert [ax.name for ax in fig.axes] == ["rectilinear", "rectilinear"]
    assert fig.axes[0].get_xlabel() == "gray level"


def test_scatter_needs_the_original(photo):
    compressed = kmq.compress(photo, 4, seed=0)
    loaded = kmq.Compressed(palette=compressed.palette, labels=compressed.labels, mode="RGB")
    with pytest.raises(UsageError, match="original"):
        kmq.plot.scatter(loaded)


# -- segments -----------------------------------------------------------------


def test_segments_shows_image_labels_and_mean_colours(photo):
    compressed = kmq.compress(photo, 7, seed=0)
    fig = kmq.plot.segments(compressed)
    original, labels, means, key = image_axes(fig)
    np.testing.assert_array_equal(np.asarray(original.images[0].get_array()), photo)
    label_image = np.asarray(labels.images[0].get_array())
    assert len(np.unique(label_image.reshape(-1, 3), axis=0)) == 7
    # the label map is the segmentation: same label, same colour, and back
    flat_labels = compressed.labels.ravel()
    flat_colours = label_image.reshape(-1, 3)
    for label in range(7):
        assert len(np.unique(flat_colours[flat_labels == label], axis=0)) == 1
    np.testing.assert_array_equal(np.asarray(means.images[0].get_array()), compressed.reconstruct())
    assert np.asarray(key.images[0].get_array()).shape == (2, 7, 3)


def test_segments_of_a_compressed_without_original(photo):
    compressed = kmq.compress(photo, 3, seed=0)
    loaded = kmq.Compressed(palette=compressed.palette, labels=compressed.labels, mode="RGB")
    fig = kmq.plot.segments(loaded)
    assert image_axes(fig)[0].get_title() == "Rebuilt image"


# -- palette ------------------------------------------------------------------


def test_palette_swatches_are_sized_by_share_and_ordered_by_luminance(photo):
    compressed = kmq.compress(photo, 8, seed=0)
    fig = kmq.plot.palette(compressed)
    (ax,) = fig.axes
    bars = ax.patches
    assert len(bars) == 8
    widths = np.array([bar.get_width() for bar in bars])
    counts = np.bincount(compressed.labels.ravel(), minlength=8)
    np.testing.assert_allclose(np.sort(widths), np.sort(counts / counts.sum() * 100))
    assert sum(widths) == pytest.approx(100)
    lefts = [bar.get_x() for bar in bars]
    assert lefts == sorted(lefts)
    colours = np.array([bar.get_facecolor()[:3] for bar in bars])
    luma = colours @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luma) >= -1e-9)


def test_palette_draws_one_row_per_k_and_into_a_given_axes(photo_sweep):
    fig = Figure()
    ax = fig.add_subplot()
    assert kmq.plot.palette(photo_sweep, ks=[2, 4, 8], ax=ax) is fig
    assert len(ax.patches) == 2 + 4 + 8
    assert [t.get_text() for t in ax.get_yticklabels()] == ["K = 2", "K = 4", "K = 8"]


def test_figures_draw_into_a_subfigure(photo_sweep):
    fig = Figure(figsize=(12, 4))
    left, right = fig.subfigures(1, 2)
    assert kmq.plot.compare(photo_sweep, ks=[2], fig=left) is fig
    assert kmq.plot.curve(photo_sweep, fig=right) is fig
    assert len(fig.axes) >= 2 + 3


# -- saving -------------------------------------------------------------------


def test_save_png_and_svg(photo_sweep, tmp_path):
    fig = kmq.plot.compare(photo_sweep, ks=[2, 4])
    png_path = tmp_path / "compare.png"
    written = kmq.plot.save_figure(fig, png_path, dpi=50)
    assert written == png_path.stat().st_size
    image = decode_png(png_path.read_bytes())
    width, height = fig.get_size_inches() * 50
    assert image.size == (round(width), round(height))

    svg_path = tmp_path / "compare.svg"
    fig = kmq.plot.compare(photo_sweep, ks=[2, 4])
    kmq.plot.save_figure(fig, svg_path)
    root = ElementTree.fromstring(svg_path.read_bytes())
    assert root.tag.endswith("svg")
    assert b"<dc:date>" not in svg_path.read_bytes()  # no date: same figure, same file
    # ... and no random element ids: the same figure drawn again from
    # scratch gives the same bytes.
    again = kmq.plot.compare(photo_sweep, ks=[2, 4])
    assert kmq.plot.render_figure(again, "svg") == svg_path.read_bytes()


def test_save_refuses_other_extensions_and_existing_files(photo_sweep, tmp_path):
    fig = kmq.plot.palette(photo_sweep, ks=[2])
    with pytest.raises(OutputError, match=r"\.png or \.svg"):
        kmq.plot.save_figure(fig, tmp_path / "palette.jpg")
    target = tmp_path / "palette.png"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        kmq.plot.save_figure(fig, target)
    assert target.read_bytes() == b"keep me"
    kmq.plot.save_figure(fig, target, force=True)
    decode_png(target.read_bytes())


def test_same_seed_same_figure(photo):
    first = kmq.plot.render_figure(kmq.plot.compare(photo, ks=[3], seed=5))
    second = kmq.plot.render_figure(kmq.plot.compare(photo, ks=[3], seed=5))
    assert first == second


# -- notebook -----------------------------------------------------------------


def test_compressed_shows_itself_in_jupyter(photo):
    compressed = kmq.compress(photo, 8, seed=0)
    shown = decode_png(compressed._repr_png_())
    np.testing.assert_array_equal(np.asarray(shown.convert("RGB")), compressed.reconstruct())

    page = compressed._repr_html_()
    metrics = compressed.metrics(with_ssim=False)
    assert "K = 8" in page
    assert f"{metrics.ratio_to_1:.1f}:1" in page
    assert f"PSNR {metrics.psnr:.1f} dB" in page
    assert f"perceptual {metrics.perceptual_score:.1f}" in page
    encoded = page.split('src="data:image/png;base64,')[1].split('"')[0]
    embedded = decode_png(base64.b64decode(encoded))
    np.testing.assert_array_equal(np.asarray(embedded.convert("RGB")), compressed.reconstruct())


def test_notebook_caption_of_an_image_with_alpha_is_of_what_is_seen(photo, hidden_colour_photo):
    rgba = hidden_colour_photo
    compressed = kmq.compress(rgba, 8, seed=0)
    metrics = compressed.metrics(with_ssim=False)
    rebuilt = compressed.reconstruct()
    assert metrics.psnr == kmq.metrics.psnr_seen(rgba, rebuilt) != kmq.metrics.psnr(rgba, rebuilt)
    caption = kmq._display.compressed_caption(compressed)
    assert caption == (
        f"K = 8 · {metrics.ratio_to_1:.1f}:1 · PSNR {metrics.psnr:.1f} dB · perceptual {metrics.perceptual_score:.1f}"
        f" · {photo.shape[1]} × {photo.shape[0]} RGBA"
    )
    assert f"PSNR {kmq.metrics.psnr(rgba, rebuilt):.1f} dB" not in caption


def test_notebook_display_of_a_large_or_loaded_image():
    pixels = np.zeros((10, 3000, 3), np.uint8)
    pixels[:, 1500:] = 255
    compressed = kmq.compress(pixels, 2, seed=0)
    assert decode_png(compressed._repr_png_()).size[0] <= 1024
    assert "shown at" in compressed._repr_html_()
    loaded = kmq.Compressed(palette=compressed.palette, labels=compressed.labels, mode="RGB")
    page = loaded._repr_html_()
    assert "K = 2" in page and "PSNR" not in page


def test_import_kmq_does_not_import_matplotlib():
    code = (
        "import sys, kmq, kmq._cli; kmq._cli.build_parser(); "
        "print('matplotlib' in sys.modules); kmq.plot; print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


# -- the CLI ------------------------------------------------------------------


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("figure", kmq.plot.FIGURES)
def test_cli_draws_each_figure(capsys, in_tmp, photo_png, figure):
    ks = ["-k", "2", "4"] if figure in ("compare", "palette", "curve") else ["-k", "4"]
    code, out, err = run(capsys, "plot", figure, photo_png, *ks, "-o", f"{figure}.png", "--dpi", "40")
    assert code == 0, err
    image = decode_png((in_tmp / f"{figure}.png").read_bytes())
    # --dpi 40: every figure is at least 9 x 2 inches
    assert image.width >= 360 and image.height >= 80
    assert f"-> {figure}.png ({figure}, PNG, {image.width} x {image.height} px," in out


def test_cli_compare_dither_both(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "plot", "compare", photo_png, "-k", "4", "16", "--dither-both", "-o", "pair.png", "--dpi", "50")
    assert code == 0, err
    image = decode_png((in_tmp / "pair.png").read_bytes())
    # Two rows (K = 4, 16) of three 3-inch panels, as compare(..., dither=(0, 1)) draws them.
    fig = kmq.plot.compare(photo_png, ks=[4, 16], dither=(0, 1))
    width, height = fig.get_size_inches() * 50
    assert image.size == (round(width), round(height)) and image.height > image.width / 2
    assert f"-> pair.png (compare, PNG, {image.width} x {image.height} px," in out
    code, _, err = run(capsys, "plot", "curve", photo_png, "--dither-both")
    assert code == 2 and "--dither-both" in err


def test_cli_default_output_name_and_svg(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "plot", "palette", photo_png, "-k", "3", "-q")
    assert code == 0, err
    assert out == ""
    decode_png((in_tmp / "photo-palette.png").read_bytes())
    code, _, err = run(capsys, "plot", "curve", photo_png, "-k", "2", "4", "-o", "curve.svg")
    assert code == 0, err
    assert ElementTree.fromstring((in_tmp / "curve.svg").read_bytes()).tag.endswith("svg")


def test_cli_without_input_draws_the_shipped_photo(capsys, in_tmp):
    code, out, err = run(capsys, "plot", "segments", "-k", "3")
    assert code == 0, err
    assert (in_tmp / "kodim23-segments.png").exists()
    assert out.startswith("kmq: kodim23.png -> kodim23-segments.png")


def test_cli_refuses_to_overwrite_without_force(capsys, in_tmp, photo_png):
    (in_tmp / "taken.png").write_bytes(b"keep me")
    code, out, err = run(capsys, "plot", "palette", photo_png, "-o", "taken.png")
    assert code == 5
    assert err.strip().count("\n") == 0 and err.startswith("kmq: error: ") and "--force" in err
    assert (in_tmp / "taken.png").read_bytes() == b"keep me"
    code, _, err = run(capsys, "plot", "palette", photo_png, "-o", "taken.png", "-f")
    assert code == 0, err
    decode_png((in_tmp / "taken.png").read_bytes())


def test_cli_errors(capsys, in_tmp, photo_png):
    code, _, err = run(capsys, "plot", "compare", photo_png, "-o", "compare.jpg")
    assert code == 5 and ".png or .svg" in err and err.count("\n") == 1
    assert not (in_tmp / "compare.jpg").exists()
    code, _, err = run(capsys, "plot", "curve", photo_png, "-o", "-")
    assert code == 5
    code, _, err = run(capsys, "plot", "scatter", photo_png, "-k", "2", "4")
    assert code == 2
    code, _, err = run(capsys, "plot")
    assert code == 2 and err.startswith("kmq: error: ")
    code, _, err = run(capsys, "plot", "bars", photo_png)
    assert code == 2
    code, _, err = run(capsys, "plot", "compare", in_tmp / "missing.png")
    assert code == 3
    code, _, err = run(capsys, "plot", "compare", photo_png, "-o", photo_png, "-f")
    assert code == 5 and "input" in err


def test_psnr_in_titles_matches_the_metrics_module(photo):
    compressed = kmq.compress(photo, 16, seed=0)
    title = image_axes(kmq.plot.compare(compressed))[1].get_title()
    assert f"{psnr(photo, compressed.reconstruct()):.1f} dB" in title


def test_palette_of_rgba_shows_transparency_on_a_checkerboard(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    rgba[:, 40:80, 3] = 120
    compressed = kmq.compress(rgba, 4, seed=0)
    fig = kmq.plot.palette(compressed)
    ax = fig.axes[0]
    [checker] = ax.images
    assert checker.get_zorder() < min(p.get_zorder() for p in ax.patches)
    assert len(np.unique(checker.get_array())) == 2  # two shades of grey
    alphas = sorted({round(p.get_facecolor()[3] * 255) for p in ax.patches})
    assert alphas == sorted(set(compressed.palette[:, 3].tolist()))
    labels = [t.get_text() for t in ax.texts]
    shares = np.bincount(compressed.labels.ravel(), minlength=compressed.k) / compressed.labels.size * 100
    transparent = int(np.flatnonzero(compressed.palette[:, 3] == 0)[0])
    assert f"#000000 α0\n{shares[transparent]:.1f} %" in labels
    assert "checkerboard" in ax.get_xlabel()
    opaque = kmq.plot.palette(kmq.compress(photo, 4, seed=0))
    assert len(opaque.axes[0].images) == 0 and "checkerboard" not in opaque.axes[0].get_xlabel()
