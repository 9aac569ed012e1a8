"""``kmq report``: one self-contained HTML file, its table and verdicts (its
progress bar: test_progress.py)."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

import kmq
import kmq.plot
from kmq._cli import main
from kmq.metrics import _share_text as _share
from kmq.plot._report import build_report

#: In page order: the dithering section comes before the figures.
FIGURE_IDS = ["fig-dithering", "fig-compare", "fig-curve", "fig-palette", "fig-scatter", "fig-segments"]


class _Page(HTMLParser):
    """Collects the tags, attributes and table cells of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture(scope="module")
def report_sweep(photo):
    return kmq.plot.sweep(photo, [2, 4, 16, 64], seed=0, with_ssim=True)


@pytest.fixture(scope="module")
def report_page(report_sweep):
    return build_report(report_sweep, dpi=40)


def test_report_embeds_one_png_per_figure(report_page):
    page = parse(report_page)
    images = [attrs for tag, attrs in page.tags if tag == "img" and not attrs["alt"].endswith("1:1 crop")]
    assert len(images) == len(FIGURE_IDS)
    figure_ids = [attrs.get("id") for tag, attrs in page.tags if tag == "figure" and attrs.get("id")]
    assert figure_ids == FIGURE_IDS
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert attrs["alt"]
        image = Image.open(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1])))
        image.load()
        assert image.format == "PNG" and image.width > 100


def test_report_is_self_contained(report_page):
    assert "http://" not in report_page and "https://" not in report_page
    page = parse(report_page)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith("data:"), (tag, attrs)
    assert not re.search(r"url\(|@import", report_page)


def test_report_table_has_a_row_per_k(report_sweep, report_page, photo):
    rows = parse(report_page).rows
    header, body = rows[0], rows[1:5]
    assert header[:8] == ["K", "colours used", "MSE", "PSNR", "SSIM", "perceptual (ΔEok)", "perceptual score", "ratio (bits)"]
    assert [row[0] for row in body] == ["2", "4", "16", "64"]
    for row, result in zip(body, report_sweep.results):
        assert row[2] == f"{result.metrics.mse:.2f}"
        assert row[3] == f"{result.metrics.psnr:.1f} dB"
        assert row[4] == f"{result.metrics.ssim:.4f}"
        rebuilt = result.compressed.reconstruct()
        assert row[5] == f"{kmq.metrics.perceptual_error(photo, rebuilt):.2f}"
        assert row[6] == f"{kmq.metrics.perceptual_score(photo, rebuilt):.1f}"
        assert row[8] == f"{len(result.compressed.to_bytes('kmq')):,}"
        assert row[10] == f"{len(result.compressed.to_bytes('png')):,}"


def test_report_names_the_first_k_reaching_30_and_35_db(report_sweep, report_page):
    for target in (30, 35):
        first = report_sweep.first_k_reaching(target)
        expected = f"K = {first}" if first is not None else "none of the K tried"
        assert re.search(rf"PSNR ≥ {target} dB first at<br><strong>{expected}</strong>", report_page)


def test_report_says_none_when_no_k_reaches_the_target(photo):
    page = build_report(kmq.plot.sweep(photo, [2, 3], seed=0), dpi=30)
    assert page.count("<strong>none of the K tried</strong>") == 2


def test_cli_report(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "report", photo_png, "-k", "2", "8", "-o", "r.html", "--dpi", "40")
    assert code == 0, err
    page = (in_tmp / "r.html").read_text("utf-8")
    assert "<h1>kmq report: photo.png</h1>" in page
    assert str(in_tmp) not in page  # no folder names: the report does not depend on where the file was
    assert f"Input file: {photo_png.stat().st_size:,} B" in page
    assert out.startswith("kmq: photo.png -> r.html (report on 2 K")
    assert "PSNR >= 30 dB first at" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_cli_report_is_reproducible_with_a_seed(capsys, in_tmp, photo_png):
    for name in ("a.html", "b.html"):
        code, _, err = run(capsys, "report", photo_png, "-k", "3", "-o", name, "--seed", "4", "--dpi", "30")
        assert code == 0, err
    assert (in_tmp / "a.html").read_bytes() == (in_tmp / "b.html").read_bytes()


def test_cli_report_default_name_and_errors(capsys, in_tmp, photo_png):
    code, _, err = run(capsys, "report", photo_png, "-k", "2", "--dpi", "30")
    assert code == 0, err
    assert (in_tmp / "photo-report.html").exists()
    code, _, err = run(capsys, "report", photo_png, "-k", "2")
    assert code == 5 and "already exists" in err and err.count("\n") == 1
    code, _, err = run(capsys, "report", photo_png, "-k", "2", "-o", "report.png")
    assert code == 5 and ".html" in err
    assert not (in_tmp / "report.png").exists()
    code, _, err = run(capsys, "report", photo_png, "-k", "0")
    assert code == 2


def test_report_shows_1_to_1_crops_of_the_original_and_each_k(report_sweep, report_page, photo):
    from kmq.plot._report import crop_box

    crops = [attrs for tag, attrs in parse(report_page).tags if tag == "img" and attrs["alt"].endswith("1:1 crop")]
    crops = crops[:5]  # those of the dithering section follow
    assert [a["alt"] for a in crops] == ["original, 1:1 crop"] + [f"K = {k}, 1:1 crop" for k in (2, 4, 16, 64)]
    top, left, bottom, right = crop_box(*photo.shape[:2])
    for attrs, expected in zip(crops, [photo] + [r.compressed.reconstruct() for r in report_sweep.results]):
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1]))))
        # Exact pixels, shown at their own size (width/height = the crop's).
        np.testing.assert_array_equal(image, expected[top:bottom, left:right])
        assert (int(attrs["width"]), int(attrs["height"])) == (right - left, bottom - top)
    assert "image-rendering: pixelated" in report_page


def test_report_table_scrolls_on_a_narrow_screen(report_page):
    tags = parse(report_page).tags
    table = next(i for i, (tag, _) in enumerate(tags) if tag == "table")
    assert tags[table - 1] == ("div", {"class": "table-wrap"})
    assert re.search(r"\.table-wrap \{[^}]*overflow-x: auto", report_page)
    assert re.search(r"\.table-wrap table \{[^}]*min-width: 760px", report_page)
    assert re.search(r"\.table-wrap td \{[^}]*white-space: nowrap", report_page)


def test_report_shows_one_k_undithered_beside_dithered(report_sweep, photo, monkeypatch):
    from kmq.plot import _sweep

    calls = []
    real = _sweep.compress
    monkeypatch.setattr(_sweep, "compress", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    page_text = build_report(report_sweep, dpi=30)
    # The sweep is dithered (kmq's default): only the undithered K = 16 is compressed.
    assert [(call["dither"], call["seed"]) for call in calls] == [(0.0, 0)]
    assert "<h2>Dithered or not, at K = 16</h2>" in page_text
    page = parse(page_text)
    start = next(i for i, row in enumerate(page.rows) if row and row[0] == "K = 16")
    header, undithered, dithered = page.rows[start : start + 3]
    assert header == ["K = 16", ".kmq (B)", ".kmq / input", "indexed PNG (B)", "PSNR", "SSIM", "perceptual (ΔEok)", "perceptual score"]
    plain = kmq.compress(photo, 16, seed=0, dither=0)
    for row, name, compressed in ((undithered, "undithered", plain), (dithered, "dithered 0.75", report_sweep[16].compressed)):
        rebuilt = compressed.reconstruct()
        assert row[0] == name
        assert row[1] == f"{len(compressed.to_bytes('kmq')):,}"
        assert row[3] == f"{len(compressed.to_bytes('png')):,}"
        assert row[4] == f"{kmq.metrics.psnr(photo, rebuilt):.1f} dB"
        assert row[5] == f"{kmq.metrics.ssim(photo, rebuilt):.4f}"
        assert row[6] == f"{kmq.metrics.perceptual_error(photo, rebuilt):.2f}"
        assert row[7] == f"{kmq.metrics.perceptual_score(photo, rebuilt):.1f}"
    # Dithering: PSNR down, perceptual error down, bytes up.
    assert float(dithered[4].split()[0]) < float(undithered[4].split()[0])
    assert float(dithered[6]) < float(undithered[6])
    assert int(dithered[1].replace(",", "")) > int(undithered[1].replace(",", ""))
    # 1:1 crops of the original and of both, exact pixels.
    from kmq.plot._report import crop_box

    top, left, bottom, right = crop_box(*photo.shape[:2])
    crops = [a for tag, a in page.tags if tag == "img" and a["alt"].endswith("1:1 crop")][5:]
    assert [a["alt"] for a in crops] == ["original, 1:1 crop", "K = 16, undithered, 1:1 crop", "K = 16, dithered 0.75, 1:1 crop"]
    for attrs, expected in zip(crops, [photo, plain.reconstruct(), report_sweep[16].compressed.reconstruct()]):
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1]))))
        np.testing.assert_array_equal(image, expected[top:bottom, left:right])


def test_report_of_an_image_with_alpha_says_what_alpha_is_kept(masked_photo, report_page):
    # Without alpha, no such column.
    assert len(parse(report_page).rows[0]) == 12 and "alpha kept" not in report_page
    masked = masked_photo
    sweep = kmq.plot.sweep(masked, [2, 16], seed=0)
    page = parse(build_report(sweep, dpi=30))
    header, body = page.rows[0], page.rows[1:3]
    assert header[12] == "alpha kept (opaque / transparent)" and len(header) == 13
    shown = []
    for row, k in zip(body, (2, 16)):
        opaque, transparent = kmq.metrics.alpha_kept(masked, sweep[k].compressed.reconstruct())
        assert row[0] == str(k) and row[12] == f"{_share(opaque)} / {_share(transparent)}"
        shown.append(row[12])
    # K = 2 has no opaque entry near the opaque pixels; K = 16 has.
    assert shown == ["0.00 % / 100 %", "100 % / 100 %"]
    # The dithering table has the column too, for both of its rows.
    start = next(i for i, row in enumerate(page.rows) if row and row[0] == "K = 16")
    header, undithered, dithered = page.rows[start : start + 3]
    assert header[-1] == "alpha kept (opaque / transparent)"
    plain = kmq.compress(masked, 16, seed=0, dither=0)
    assert undithered[-1] == " / ".join(_share(v) for v in kmq.metrics.alpha_kept(masked, plain.reconstruct()))
    assert dithered[-1] == shown[1]


def test_report_of_an_undithered_sweep_compresses_the_dithered_one(photo, monkeypatch):
    from kmq.plot import _sweep

    data = kmq.plot.sweep(photo, [4, 8], seed=0, dither=0)
    calls = []
    real = _sweep.compress
    monkeypatch.setattr(_sweep, "compress", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    page = build_report(data, dpi=30)
    # K = 4 (no 16: the lower middle K), at kmq's default level.
    assert [call["dither"] for call in calls] == [kmq._quantize.DEFAULT_DITHER]
    assert "<h2>Dithered or not, at K = 4</h2>" in page
    assert "SSIM</th>" in page and "<td>–</td>" in page  # a sweep without SSIM


def test_report_verdict_gives_the_perceptual_score(report_sweep, report_page):
    first = report_sweep.first_k_reaching(30)
    assert first is not None
    score = report_sweep[first].metrics.perceptual_score
    assert f"<strong>K = {first}</strong>{report_sweep[first].metrics.psnr:.1f} dB, perceptual {score:.1f}; .kmq" in report_page
