"""The command line does what README.md says: folders with a trailing
slash, the demo run twice, --json's shape, -V, help hints, seeds, memory,
transparency in GIF and JPEG."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmq: error: "), err
    return lines[0]


def test_seed_minus_one_is_a_usage_error(capsys, photo_png):
    code, _, err = run(capsys, "compress", str(photo_png), "--seed", "-1")
    assert code == 2
    assert one_line_error(err) == (
        "kmq: error: argument --seed: the seed must be from 0 to 2**128 - 1, got -1 (see 'kmq compress --help')"
    )
    with pytest.raises(kmq.UsageError, match=r"seed \(random_state\) must be a whole number >= 0, got -1"):
        kmq.compress(np.zeros((4, 4, 3), np.uint8), 2, seed=-1)


def test_readme_command_one_runs_twice(capsys, in_tmp, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    # README's `kmq compress`, twice: the demo replaces its own output.
    assert run(capsys, "compress", "--seed", "0")[0] == 0
    first = (in_tmp / "kodim23-k16.kmq").read_bytes()
    code, _, err = run(capsys, "compress", "--seed", "1")
    assert code == 0, err
    assert (in_tmp / "kodim23-k16.kmq").read_bytes() != first
    # With INPUT or -o, an existing file is still protected.
    code, _, err = run(capsys, "compress", str(kmq.sample_image_path()), "-o", "kodim23-k16.kmq")
    assert code == 5 and "already exists" in one_line_error(err)


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_output_with_a_trailing_slash_is_a_folder(capsys, in_tmp, photo_png, command):
    if command == "compress":
        argv = ["compress", str(photo_png), "-k", "4", "-o", "small/deeper/"]
        expected = in_tmp / "small" / "deeper" / "photo-k4.kmq"
    else:
        kmq.compress(photo_png, 4, seed=0).save("photo-k4.kmq")
        argv = ["decompress", "photo-k4.kmq", "-o", "restored/"]
        expected = in_tmp / "restored" / "photo-k4.png"
    code, _, err = run(capsys, *argv, "-q")
    assert code == 0, err
    assert expected.is_file()


def test_several_inputs_into_a_new_folder(capsys, in_tmp, photo_png):
    Image.open(photo_png).save("second.png")
    code, _, err = run(capsys, "compress", str(photo_png), "second.png", "-k", "4", "-o", "small/", "--format", "png", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (in_tmp / "small").iterdir()) == ["photo-k4.png", "second-k4.png"]


def test_json_has_one_shape_for_one_and_several_inputs(capsys, in_tmp, photo_png):
    Image.open(photo_png).save("second.png")
    _, one, _ = run(capsys, "compress", str(photo_png), "-k", "4", "--seed", "0", "--json")
    _, several, _ = run(capsys, "compress", "second.png", str(photo_png), "-k", "4", "--seed", "0", "--json", "-f")
    one, several = json.loads(one), json.loads(several)
    assert isinstance(one, list) and isinstance(several, list) and len(one) == 1 and len(several) == 2
    assert set(one[0]) == set(several[0]) == set(several[1])
    assert one[0]["metrics"] == several[1]["metrics"]


def test_dash_capital_v_prints_the_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["-V"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"kmq {kmq.__version__}"


@pytest.mark.parametrize("command", ["compress", "decompress", "info", "report", "plot scatter", "plot compare"])
def test_unknown_option_hint_names_the_subcommand_help(capsys, command):
    code, _, err = run(capsys, *command.split(), "x.png", "--no-such-option")
    assert code == 2
    assert one_line_error(err) == f"kmq: error: unrecognized arguments: --no-such-option (see 'kmq {command} --help')"


def test_a_second_k_for_a_one_k_figure_names_that_figures_help(capsys):
    # scatter and segments draw one K; compare takes several.
    code, _, err = run(capsys, "plot", "scatter", "x.png", "-k", "4", "16")
    assert code == 2
    assert one_line_error(err) == "kmq: error: unrecognized arguments: 16 (see 'kmq plot scatter --help')"


def test_decompress_out_of_memory_has_its_own_message_and_code(capsys, in_tmp, photo_png, monkeypatch):
    kmq.compress(photo_png, 4, seed=0).save("p.kmq")
    from kmq import _container

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(_container, "decode", no_memory)
    code, _, err = run(capsys, "decompress", "p.kmq")
    assert code == 7
    assert one_line_error(err) == (
        "kmq: error: out of memory while decompressing: the image the file declares does not fit in memory"
    )
    assert not (in_tmp / "p.png").exists()


def test_gif_of_soft_alpha_takes_a_threshold(capsys, in_tmp):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 250
    rgba[:, :4, 3] = 100
    rgba[:, 4:, 3] = 180
    Image.fromarray(rgba, "RGBA").save("soft.png")
    code, _, err = run(capsys, "compress", "soft.png", "-k", "2", "-o", "default.gif", "-q")
    assert code == 0, err
    code, _, err = run(capsys, "compress", "soft.png", "-k", "2", "-o", "high.gif", "--alpha-threshold", "200", "-q")
    assert code == 0, err
    default = np.asarray(Image.open("default.gif").convert("RGBA"))[..., 3]
    high = np.asarray(Image.open("high.gif").convert("RGBA"))[..., 3]
    assert (default[:, :4] == 0).all() and (default[:, 4:] == 255).all()
    assert (high == 0).all()
    code, _, err = run(capsys, "compress", "soft.png", "-o", "x.gif", "--alpha-threshold", "300")
    assert code == 2 and "expected a whole number from 0 to 255, got 300" in one_line_error(err)


GIF_NOTE = (
    "  note: GIF has on/off transparency: 2 translucent palette entries were made fully transparent or opaque "
    "(--alpha-threshold, default 128); .png or .webp keeps them"
)
BMP_NOTE = (
    "  note: BMP keeps alpha only as the fourth byte of 32-bit pixels, which many readers ignore; "
    ".png or .tif keeps transparency"
)


def lossless_note(k):
    return f"  note: lossless: the image has {k} distinct colours, no more than K={k}; the palette is exactly those colours"


def test_formats_that_lose_alpha_say_so(capsys, in_tmp):
    # Four exact colours: transparent, two translucent, one opaque.
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 250
    rgba[:, 2:4, 3] = 100
    rgba[:, 4:6, 3] = 180
    rgba[:, 6:, 3] = 255
    Image.fromarray(rgba, "RGBA").save("soft.png")
    for name, note in (("soft.gif", GIF_NOTE), ("soft.bmp", BMP_NOTE)):
        code, out, err = run(capsys, "compress", "soft.png", "-k", "4", "-o", name)
        assert code == 0, err
        assert [line for line in out.splitlines() if "note:" in line] == [lossless_note(4), note]
        code, out, _ = run(capsys, "compress", "soft.png", "-k", "4", "-o", name, "-f", "--json")
        assert json.loads(out)[0]["notes"] == [n.removeprefix("  note: ") for n in (lossless_note(4), note)]
    # kmq decompress says the same of a .kmq written to those formats.
    kmq.compress("soft.png", 4).save("soft.kmq")
    code, out, err = run(capsys, "decompress", "soft.kmq", "-o", "back.gif")
    assert code == 0, err
    assert out.splitlines()[1:] == [GIF_NOTE]
    # Formats that keep alpha, and images without translucency, say nothing.
    for name in ("soft.png", "soft.webp", "soft.tif"):
        code, out, _ = run(capsys, "decompress", "soft.kmq", "-o", name, "-f")
        assert code == 0 and len(out.splitlines()) == 1
    rgba[..., 3] = np.where(rgba[..., 3] == 255, 255, 0)  # on/off only: GIF keeps it
    Image.fromarray(rgba, "RGBA").save("binary.png")
    code, out, _ = run(capsys, "compress", "binary.png", "-k", "2", "-o", "binary.gif")
    assert code == 0 and [line for line in out.splitlines() if "note:" in line] == [lossless_note(2)]
    code, out, _ = run(capsys, "compress", "binary.png", "-k", "2", "-o", "binary.bmp")
    assert [line for line in out.splitlines() if "note:" in line] == [lossless_note(2), BMP_NOTE]
    rgba[..., 3] = 255  # opaque: BMP loses nothing either
    Image.fromarray(rgba, "RGBA").save("opaque.png")
    code, out, _ = run(capsys, "compress", "opaque.png", "-k", "1", "-o", "opaque.bmp")
    assert code == 0 and [line for line in out.splitlines() if "note:" in line] == [
        "  note: lossless: the image has 1 distinct colour, no more than K=1; the palette is exactly that colour"
    ]


def test_the_report_measures_the_file_a_lossy_format_wrote(capsys, in_tmp, photo):
    """GIF's on/off alpha and JPEG change the pixels: the report, --json and
    the manifest give the figures of the file as a reader decodes it."""
    from kmq import metrics

    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, : photo.shape[1] // 2, 3] = np.linspace(0, 254, photo.shape[1] // 2).astype(np.uint8)  # a soft ramp
    Image.fromarray(rgba, "RGBA").save("soft.png")
    Image.fromarray(photo).save("photo.png")
    for source, name, mode in (("soft.png", "soft.gif", "RGBA"), ("photo.png", "photo.jpg", "RGB"), ("soft.png", "soft-k8.png", "RGBA")):
        code, out, err = run(capsys, "compress", source, "-k", "8", "-o", name, "--json")
        assert code == 0, err
        m = json.loads(out)[0]["metrics"]
        original = np.asarray(Image.open(source).convert(mode))
        written = np.asarray(Image.open(name).convert(mode))
        assert m["psnr"] == metrics.psnr_seen(original, written)
        assert m["perceptual_error"] == metrics.perceptual_error(original, written)
        assert m["ssim"] == metrics.ssim_seen(original, written)
        palette_image = kmq.compress(source, 8).reconstruct()
        if name.endswith(".png"):
            np.testing.assert_array_equal(written, palette_image)
        else:  # the format changed the pixels, and the figures say so
            assert m["psnr"] < metrics.psnr_seen(original, palette_image)
        code, out, _ = run(capsys, "compress", source, "-k", "8", "-o", name, "-f")
        assert f"  PSNR          {m['psnr']:.2f} dB\n" in out
    # A batch's manifest: the same PSNR.
    code, _, err = run(capsys, "compress", "soft.png", "photo.png", "-k", "8", "--format", "gif", "-o", "out/", "--manifest", "m.csv", "-q")
    assert code == 0, err
    import csv

    with open("m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["input"] for row in rows) == ["photo.png", "soft.png"]
    for row in rows:
        mode = "RGBA" if row["input"] == "soft.png" else "RGB"
        original = np.asarray(Image.open(row["input"]).convert(mode))
        written = np.asarray(Image.open(row["output"]).convert(mode))
        assert float(row["psnr"]) == pytest.approx(metrics.psnr_seen(original, written), abs=1e-4)


def test_measure_takes_the_pixels_written(photo):
    from kmq import metrics

    c = kmq.compress(photo, 8)
    noisy = c.reconstruct().copy()
    noisy[::3, ::3] ^= 8
    m = metrics.measure(photo, c, reconstructed=noisy)
    assert (m.psnr, m.k) == (metrics.psnr(photo, noisy), 8)
    assert metrics.measure(photo, c).psnr == metrics.psnr(photo, c.reconstruct()) != m.psnr
    with pytest.raises(kmq.UsageError, match=r"reconstructed must be uint8 of the original's shape \(96, 128, 3\), got uint8 \(96, 127, 3\)"):
        metrics.measure(photo, c, reconstructed=noisy[:, 1:])
    from kmq import _io

    for fmt in ("png", "webp", "bmp", "tiff"):
        assert _io.written_pixels(c.to_bytes(fmt), fmt, "RGB") is None
    assert _io.written_pixels(c.to_bytes("gif"), "gif", "RGB") is None  # GIF without alpha is exact


def test_jpeg_of_an_opaque_rgba_image_drops_the_alpha(capsys, in_tmp, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save("opaque.png")
    code, _, err = run(capsys, "compress", "opaque.png", "-k", "8", "-o", "out.jpg", "-q")
    assert code == 0, err
    with Image.open("out.jpg") as jpeg:
        assert jpeg.mode == "RGB" and jpeg.size == (photo.shape[1], photo.shape[0])
    rgba[0, 0, 3] = 0  # now one pixel is transparent: JPEG cannot say so
    Image.fromarray(rgba, "RGBA").save("holed.png")
    code, _, err = run(capsys, "compress", "holed.png", "-k", "8", "-o", "holed.jpg")
    assert code == 5 and "JPEG cannot store transparency" in one_line_error(err)
