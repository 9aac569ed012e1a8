"""The kmq command, run in-process: outputs, reports, errors and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kmq: error: ")
    return lines[0]


# -- the main job --------------------------------------------------------------


def test_compress_without_input_uses_the_shipped_photo(capsys, in_tmp, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    code, out, err = run(capsys, "compress", "--seed", "0")
    assert code == 0, err
    output = in_tmp / "kodim23-k16.kmq"
    assert output.exists()
    assert out.startswith("kmq: kodim23.png (the sample photograph shipped with kmq) -> kodim23-k16.kmq (kmq)\n")
    for label in ("MSE", "distortion J", "PSNR", "SSIM", "ratio (bits)", "input", "raw pixels", "output", "time"):
        assert f"  {label} " in out
    assert "0.1667 = 6.0:1  (4 bits/pixel + 48-byte palette)" in out
    restored = kmq.decompress(output)
    assert restored.shape == (512, 768, 3)


def test_compress_json_report(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "compress", str(photo_png), "-k", "8", "-o", "x.png", "--seed", "1", "--json")
    assert code == 0, err
    [report] = json.loads(out)  # a list, as for several inputs
    assert report["k"] == 8 and report["format"] == "png" and report["output"] == "x.png"
    assert report["metrics"]["index_bits"] == 3
    assert report["metrics"]["output_bytes"] == (in_tmp / "x.png").stat().st_size
    assert report["metrics"]["input_bytes"] == photo_png.stat().st_size
    assert report["metrics"]["ratio"] == pytest.approx((96 * 128 * 3 + 24 * 8) / (24 * 96 * 128))
    assert report["seconds"] > 0 and report["status"] == "ok" and report["exit_code"] == 0
    c = kmq.compress(photo_png, 8, seed=1)
    np.testing.assert_array_equal(np.asarray(Image.open(in_tmp / "x.png").convert("RGB")), c.reconstruct())
    # The perceptual metric, as kmq.metrics computes it.
    original = np.asarray(Image.open(photo_png).convert("RGB"))
    assert report["metrics"]["perceptual_error"] == kmq.metrics.perceptual_error(original, c.reconstruct())
    assert report["metrics"]["perceptual_score"] == kmq.metrics.perceptual_score(original, c.reconstruct())
    assert 0 < report["metrics"]["perceptual_error"] < 10


def test_compress_table_shows_the_perceptual_metric(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "compress", str(photo_png), "-k", "8", "-o", "x.png", "--seed", "1")
    assert code == 0, err
    m = kmq.compress(photo_png, 8, seed=1).metrics()
    assert m.perceptual_score == pytest.approx(100 * np.exp(-((m.perceptual_error / 1.81) ** 2.2)))
    row = f"  perceptual    {m.perceptual_error:.2f}  (mean ΔEok x 100 after the eye's blur; score {m.perceptual_score:.1f} of 100)\n"
    assert row in out
    # Beside PSNR and SSIM, in that order.
    assert out.index("  PSNR ") < out.index("  SSIM ") < out.index("  perceptual ") < out.index("  ratio (bits) ")


def test_compress_table_palette_line(capsys, in_tmp, photo):
    # The photograph in 32 colours fits 16 in one iteration; the full crop takes more.
    Image.fromarray(photo).quantize(32, dither=Image.Dither.NONE).convert("RGB").save(in_tmp / "few.png")
    Image.fromarray(photo).save(in_tmp / "full.png")
    for name, words in (("few.png", "1 iteration"), ("full.png", "{} iterations")):
        c = kmq.compress(in_tmp / name, 16)
        assert (c.n_iter == 1) == (name == "few.png")
        code, out, err = run(capsys, "compress", name, "-k", "16", "-o", "x.png", "--force")
        assert code == 0, err
        line = f"  palette       16 colours (k-means in oklab, {words.format(c.n_iter)}, seed 0, dithered 0.75)\n"
        assert line in out
    code, out, err = run(capsys, "compress", "full.png", "-k", "16", "-o", "x.png", "--force", "--nofs", "--space", "rgb", "--sample", "0.5")
    c = kmq.compress(in_tmp / "full.png", 16, dither=0, space="rgb", sample=0.5)
    assert f"  palette       16 colours (k-means in rgb, {c.n_iter} iterations, seed 0, fitted on 0.5 of the pixels)\n" in out


def test_compress_table_shows_the_alpha_kept(capsys, in_tmp, photo):
    h, w = photo.shape[:2]
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, : w // 4] = 0
    alpha[:, w // 4 : w // 2] = np.linspace(1, 254, w // 4).astype(np.uint8)
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(in_tmp / "a.png")
    code, out, err = run(capsys, "compress", "a.png", "-k", "16", "-o", "x.png")
    assert code == 0, err
    m = kmq.compress(in_tmp / "a.png", 16).metrics()
    assert (m.opaque_kept, m.transparent_kept) == (1.0, 1.0)
    assert "  alpha         opaque kept at 255: 100 %, transparent kept at 0: 100 %\n" in out
    assert out.index("  perceptual ") < out.index("  alpha ") < out.index("  ratio (bits) ")
    # No such row without alpha.
    Image.fromarray(photo).save(in_tmp / "b.png")
    code, out, err = run(capsys, "compress", "b.png", "-k", "16", "-o", "y.png")
    assert code == 0 and "  alpha " not in out


@pytest.mark.parametrize(
    ("fraction", "shown"), [(1.0, "100 %"), (0.99996, "99.99 %"), (0.9569893, "95.69 %"), (0.0, "0.00 %"), (0.5, "50.00 %")]
)
def test_alpha_shares_say_100_only_when_exact(fraction, shown):
    from kmq.metrics import _share_text as _share

    assert _share(fraction) == shown


def test_prompt_for_k_on_a_terminal(capsys, in_tmp, photo_png, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "5" if prompt == "Number of colours [16]: " else "?")
    code, out, err = run(capsys, "compress", str(photo_png), "-q")
    assert code == 0, err
    assert (in_tmp / "photo-k5.kmq").exists()
    assert kmq.load(in_tmp / "photo-k5.kmq").k == 5


def test_prompt_empty_answer_means_16(capsys, in_tmp, photo_png, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "")
    assert run(capsys, "compress", str(photo_png), "-q")[0] == 0
    assert (in_tmp / "photo-k16.kmq").exists()


def test_prompt_bad_answer(capsys, in_tmp, photo_png, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "many")
    code, _, err = run(capsys, "compress", str(photo_png))
    assert code == 2
    assert "whole number from 1 to 65536, got 'many'" in one_line_error(err)


def test_quiet_prints_nothing(capsys, in_tmp, photo_png):
    code, out, err = run(capsys, "compress", str(photo_png), "-k", "4", "-q")
    assert (code, out, err) == (0, "", "")


def test_decompress_and_info(capsys, in_tmp, photo_png):
    assert run(capsys, "compress", str(photo_png), "-k", "6", "-o", "p.kmq", "-q", "--seed", "0")[0] == 0
    stored = kmq.load("p.kmq")
    code, out, err = run(capsys, "decompress", "p.kmq")
    assert code == 0, err
    assert "p.kmq -> p.png (png, 128 x 96 RGB, K=6" in out
    np.testing.assert_array_equal(np.asarray(Image.open("p.png").convert("RGB")), stored.reconstruct())
    assert run(capsys, "decompress", "p.kmq", "-o", "p.webp", "-q")[0] == 0
    np.testing.assert_array_equal(np.asarray(Image.open("p.webp").convert("RGB")), stored.reconstruct())
    code, out, _ = run(capsys, "info", "p.kmq", "--json")
    header = json.loads(out)
    assert code == 0 and header["width"] == 128 and header["height"] == 96 and header["k"] == 6
    assert header["crc"] == "ok"
    code, out, _ = run(capsys, "info", "p.kmq")
    assert code == 0 and "p.kmq: kmq container" in out


def test_stdin_to_stdout(capsysbinary, in_tmp, photo_png, monkeypatch):
    data = photo_png.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["compress", "-", "-k", "4", "--seed", "0", "--format", "png"])
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    assert out[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<stdin> -> <stdout> (png)" in err  # the report goes to stderr
    assert sorted(p.name for p in in_tmp.iterdir()) == ["photo.png"]  # nothing else written


def test_skip_if_larger(capsys, in_tmp):
    # A tiny, flat PNG: any .kmq of it is larger than the input file.
    Image.new("RGB", (4, 4), (9, 9, 9)).save("flat.png", optimize=True)
    code, _, err = run(capsys, "compress", "flat.png", "-k", "2", "-o", "flat.bmp", "--skip-if-larger")
    assert code == 98
    assert "kmq: skipped: the output would be" in err
    assert not (in_tmp / "flat.bmp").exists()


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kmq", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"kmq {kmq.__version__}"


def _python(code: str, **env) -> str:
    environ = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    environ.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environ)
    return result.stdout.strip()


def test_import_kmq_loads_its_names_on_first_use():
    out = _python(
        "import sys, kmq; print('numpy' in sys.modules);"
        "from kmq import compress, metrics, KMeans, DEFAULT_MAX_PIXELS;"
        "print(compress.__module__, metrics.__name__, KMeans.__module__, DEFAULT_MAX_PIXELS);"
        "print(sorted(set(kmq.__all__) - set(dir(kmq))))"
    )
    assert out.splitlines() == ["False", f"kmq._quantize kmq.metrics kmq._engine.kmeans {kmq.DEFAULT_MAX_PIXELS}", "[]"]
    with pytest.raises(AttributeError, match="module 'kmq' has no attribute 'nope'"):
        kmq.nope  # noqa: B018


def test_the_command_runs_numpy_blas_on_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    code = (
        "import kmq._cli, os, numpy, threadpoolctl;"
        "print(os.environ['OPENBLAS_NUM_THREADS'], sorted({p['num_threads'] for p in threadpoolctl.threadpool_info()"
        " if p['user_api'] == 'blas'}))"
    )
    assert threadpoolctl.threadpool_info()  # numpy's BLAS is seen at all
    assert _python(code) == "1 [1]"
    # The user's own setting wins.
    assert _python("import kmq._cli, os; print(os.environ['OPENBLAS_NUM_THREADS'])", OPENBLAS_NUM_THREADS="3") == "3"


def test_console_script_exit_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kmq", "compress", str(tmp_path / "missing.png")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip() == f"kmq: error: no such file: {tmp_path / 'missing.png'}"


# -- bad input: one line on stderr, a documented exit code, nothing written -----------


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["-k", "abc"], 2, "the number of colours must be a whole number from 1 to 65536, got 'abc'"),
        (["-k", "0"], 2, "the number of colours must be from 1 to 65536, got 0"),
        (["-k", "70000"], 2, "the number of colours must be from 1 to 65536, got 70000"),
        (["-k", "4", "--sample", "2"], 2, "expected a fraction in (0, 1], got 2.0"),
        (["-k", "4", "--n-init", "0"], 2, "expected a number >= 1, got 0"),
        (["-k", "4", "--max-pixels", "0.5"], 2, "expected a whole number of pixels (0 = no limit), got '0.5'"),
        (["-k", "300", "-o", "big.png"], 5, "PNG holds at most 256 colours, got -k 300; use a .kmq output"),
        (["-k", "300", "-o", "big.gif"], 5, "GIF holds at most 256 colours"),
        (["-k", "4", "-o", "out.xyz"], 5, "cannot tell the output format of out.xyz (.xyz)"),
        (["-k", "4", "-o", "noext"], 5, "cannot tell the output format of noext (no extension)"),
    ],
)
def test_bad_options(capsys, in_tmp, photo_png, args, code, message):
    got, out, err = run(capsys, "compress", str(photo_png), *args)
    assert got == code
    assert message in one_line_error(err)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["photo.png"]


def test_missing_input(capsys, in_tmp):
    code, _, err = run(capsys, "compress", "nope.png", "-k", "4")
    assert code == 3
    assert one_line_error(err) == "kmq: error: no such file: nope.png"


def test_folder_without_images(capsys, in_tmp):
    (in_tmp / "folder").mkdir()
    (in_tmp / "folder" / "notes.txt").write_text("no image here")
    code, _, err = run(capsys, "compress", "folder", "-k", "4")
    assert code == 3
    assert one_line_error(err).startswith("kmq: error: no images in folder folder (looked for .bmp, .gif, .jpeg")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["folder"]


# -- several inputs ------------------------------------------------------------


@pytest.fixture
def three_images(in_tmp, photo):
    """a.png in the current folder and pics/ with b.png, c.jpg and things
    that are not images to compress (a text file, a hidden PNG, a subfolder)."""
    Image.fromarray(photo).save(in_tmp / "a.png")
    pics = in_tmp / "pics"
    (pics / "sub").mkdir(parents=True)
    Image.fromarray(photo[::-1]).save(pics / "b.png")
    Image.fromarray(photo[:, ::-1]).save(pics / "c.jpg", quality=95)
    Image.fromarray(photo).save(pics / ".hidden.png")
    Image.fromarray(photo).save(pics / "sub" / "d.png")
    (pics / "notes.txt").write_text("not an image")
    (in_tmp / "out").mkdir()
    return in_tmp


def test_several_inputs_and_a_folder_in_one_call(capsys, three_images):
    code, out, err = run(capsys, "compress", "a.png", "pics", "-k", "8", "--seed", "0", "-o", "out")
    assert code == 0, err
    assert sorted(p.name for p in (three_images / "out").iterdir()) == ["a-k8.kmq", "b-k8.kmq", "c-k8.kmq"]
    for source in ("a.png", "pics/b.png", "pics/c.jpg"):
        stem = source.split("/")[-1].split(".")[0]
        assert kmq.load(three_images / "out" / f"{stem}-k8.kmq") == kmq.compress(three_images / source, 8, seed=0)
    # One report per image, in order, then the summary line.
    assert [line.split(" -> ")[0] for line in out.splitlines() if " -> " in line] == [
        "kmq: a.png", "kmq: pics/b.png", "kmq: pics/c.jpg"
    ]
    assert out.splitlines()[-1].startswith("kmq: 3 images: 3 written, 0 skipped, 0 failed in ")


def test_a_bad_file_among_several_does_not_stop_the_others(capsys, three_images):
    (three_images / "text.png").write_text("not really a png")
    code, out, err = run(capsys, "compress", "text.png", "a.png", "nope.png", "pics/b.png", "-k", "4", "--seed", "0", "--json")
    assert code == 4  # the first failure's code: text.png is not an image
    assert err.splitlines() == [
        "kmq: error: text.png is not an image kmq can read (PNG, JPEG, BMP, TIFF, WebP, GIF)",
        "kmq: error: no such file: nope.png",
    ]
    report = json.loads(out)
    assert [(r["input"], r["output"], r["status"], r["exit_code"]) for r in report] == [
        ("text.png", None, "failed", 4), ("a.png", "a-k4.kmq", "ok", 0),
        ("nope.png", None, "failed", 3), ("pics/b.png", "b-k4.kmq", "ok", 0),
    ]
    from kmq.batch import DETAIL_FIELDS, MANIFEST_FIELDS

    assert sorted(report[1]) == sorted([*MANIFEST_FIELDS, "exit_code", *DETAIL_FIELDS])
    assert report[1]["metrics"]["output_bytes"] == report[1]["bytes_out"] and report[0]["metrics"] is None
    assert report[1]["bytes_out"] == (three_images / "a-k4.kmq").stat().st_size
    assert sorted(p.name for p in three_images.iterdir() if p.suffix == ".kmq") == ["a-k4.kmq", "b-k4.kmq"]


def test_several_inputs_skipped_and_written(capsys, in_tmp, photo):
    # A BMP is 54 bytes of header plus the raw pixels: larger than a tiny
    # flat PNG, smaller than an uncompressed TIFF of the same pixels.
    for name in ("flat1.png", "flat2.png"):
        Image.new("RGB", (4, 4), (9, 9, 9)).save(name, optimize=True)
    Image.fromarray(photo).save("photo.tif")
    code, out, err = run(capsys, "compress", "flat1.png", "flat2.png", "-k", "2", "--format", "bmp", "--skip-if-larger")
    assert code == 98
    assert err.count("kmq: skipped: the output would be") == 2
    assert not any(p.suffix == ".bmp" for p in in_tmp.iterdir())
    assert out.splitlines()[-1].startswith("kmq: 2 images: 0 written, 2 skipped, 0 failed in ")
    # One written, one skipped: still 98, and the written one is there.
    code, out, err = run(capsys, "compress", "photo.tif", "flat1.png", "-k", "2", "--format", "bmp", "--skip-if-larger", "-q")
    assert code == 98 and out == "" and err == ""
    assert sorted(p.name for p in in_tmp.iterdir() if p.suffix == ".bmp") == ["photo-k2.bmp"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["a.png", "pics/b.png", "-o", "x.png"], "with several inputs, -o must be a folder, got 'x.png'"),
        (["a.png", "-", "-k", "4"], "- (standard input) cannot be one of several inputs"),
        (["a.png", "pics/sub/d.png", "pics/sub", "-k", "4"], "pics/sub/d.png and pics/sub/d.png would both be written to d-k4.kmq"),
        (["pics", "-k", "300", "--format", "png"], "PNG holds at most 256 colours, got -k 300"),
    ],
)
def test_several_inputs_refused_before_any_work(capsys, three_images, args, message):
    before = sorted(str(p) for p in three_images.rglob("*"))
    code, _, err = run(capsys, "compress", *args)
    assert code in (2, 5)
    assert message in one_line_error(err)
    assert sorted(str(p) for p in three_images.rglob("*")) == before


def test_same_stem_in_two_folders_is_refused(capsys, three_images, photo):
    (three_images / "other").mkdir()
    Image.fromarray(photo).save(three_images / "other" / "b.png")
    code, _, err = run(capsys, "compress", "pics", "other", "-k", "4")
    assert code == 2
    assert "pics/b.png and other/b.png would both be written to b-k4.kmq" in one_line_error(err)
    assert not any(p.suffix == ".kmq" for p in three_images.rglob("*"))


def test_not_an_image(capsys, in_tmp):
    (in_tmp / "text.png").write_text("not really a png")
    code, _, err = run(capsys, "compress", "text.png", "-k", "4")
    assert code == 4
    assert "text.png is not an image kmq can read" in one_line_error(err)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["text.png"]


def test_truncated_image(capsys, in_tmp, photo_png):
    data = photo_png.read_bytes()
    (in_tmp / "cut.png").write_bytes(data[: len(data) // 3])
    code, _, err = run(capsys, "compress", "cut.png", "-k", "4")
    assert code == 4
    assert "cut.png is truncated or corrupt" in one_line_error(err)
    assert not any(p.name.startswith("cut-") for p in in_tmp.iterdir())


def test_unreachable_url(capsys, in_tmp):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(capsys, "compress", f"http://127.0.0.1:{port}/a.png", "-k", "4")
    assert code == 3
    assert f"cannot download http://127.0.0.1:{port}/a.png" in one_line_error(err)


def test_existing_output_needs_force(capsys, in_tmp, photo_png):
    (in_tmp / "out.png").write_bytes(b"keep me")
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", "out.png")
    assert code == 5
    assert one_line_error(err) == "kmq: error: out.png already exists; use --force (-f) to overwrite it"
    assert (in_tmp / "out.png").read_bytes() == b"keep me"
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", "out.png", "-f", "-q")
    assert code == 0, err
    assert (in_tmp / "out.png").read_bytes()[:4] == b"\x89PNG"


def test_never_overwrites_the_input_even_with_force(capsys, in_tmp, photo_png):
    before = photo_png.read_bytes()
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "-o", str(photo_png), "-f")
    assert code == 5
    assert "refusing to overwrite the input" in one_line_error(err)
    assert photo_png.read_bytes() == before


def test_corrupt_kmq(capsys, in_tmp, photo_png):
    assert run(capsys, "compress", str(photo_png), "-k", "4", "-o", "a.kmq", "-q")[0] == 0
    data = bytearray((in_tmp / "a.kmq").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (in_tmp / "bad.kmq").write_bytes(bytes(data))
    code, _, err = run(capsys, "decompress", "bad.kmq")
    assert code == 4
    assert "kmq" in one_line_error(err)
    assert not (in_tmp / "bad.png").exists()
    (in_tmp / "short.kmq").write_bytes(bytes(data[:20]))
    code, _, err = run(capsys, "info", "short.kmq")
    assert code == 4
    one_line_error(err)


def test_decompress_png_needs_k_at_most_256(capsys, in_tmp, photo_png):
    assert run(capsys, "compress", str(photo_png), "-k", "300", "-o", "many.kmq", "-q", "--seed", "0")[0] == 0
    code, _, err = run(capsys, "decompress", "many.kmq", "-o", "many.png")
    assert code == 5
    assert "PNG holds at most 256 colours, got K=300; use .kmq" in one_line_error(err)
    code, out, err = run(capsys, "decompress", "many.kmq")
    assert code == 0, err
    assert "many.kmq -> many.tif (tiff" in out


def test_pixel_limit_option(capsys, in_tmp, photo_png):
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "--max-pixels", "1000")
    assert code == 6
    assert "12,288 pixels, more than the limit of 1,000" in one_line_error(err)
    assert run(capsys, "compress", str(photo_png), "-k", "4", "--max-pixels", "0", "-q")[0] == 0


def test_no_command_prints_help(capsys):
    code, out, err = run(capsys)
    assert code == 2
    assert "compress" in err and "decompress" in err


def test_unknown_option_is_one_line(capsys):
    code, _, err = run(capsys, "compress", "--frobnicate")
    assert code == 2
    assert "unrecognized arguments: --frobnicate" in one_line_error(err)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncated", "truncated .kmq file"),
        ("extended", "unexpected bytes after the CRC"),
        ("flipped", "CRC-32 mismatch"),
        ("random", "not a .kmq file"),
    ],
)
def test_damaged_kmq_files_exit_4_with_a_specific_message(capsys, in_tmp, photo_png, damage, message):
    assert run(capsys, "compress", str(photo_png), "-k", "8", "-o", "good.kmq", "-q", "--seed", "0")[0] == 0
    data = (in_tmp / "good.kmq").read_bytes()
    damaged = {
        "truncated": data[: len(data) - 100],
        "extended": data + b"\x00" * 10,
        "flipped": data[:60] + bytes([data[60] ^ 0x10]) + data[61:],
        "random": np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes(),
    }[damage]
    (in_tmp / "bad.kmq").write_bytes(damaged)
    for command in (["decompress", "bad.kmq"], ["info", "bad.kmq"]):
        code, _, err = run(capsys, *command)
        assert code == 4
        assert message in one_line_error(err)
    assert not (in_tmp / "bad.png").exists()


def test_output_folder_with_one_input(capsys, in_tmp, photo_png):
    """-o FOLDER works with one input too: the default name, in the folder,
    for compress and decompress (from stdin, the name is stdin.png)."""
    (in_tmp / "out").mkdir()
    code, _, err = run(capsys, "compress", str(photo_png), "-k", "4", "--seed", "0", "-o", "out", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (in_tmp / "out").iterdir()) == ["photo-k4.kmq"]
    code, _, err = run(capsys, "decompress", "out/photo-k4.kmq", "-o", "out", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (in_tmp / "out").iterdir()) == ["photo-k4.kmq", "photo-k4.png"]
    restored = np.asarray(Image.open(in_tmp / "out" / "photo-k4.png").convert("RGB"))
    np.testing.assert_array_equal(restored, kmq.decompress(in_tmp / "out" / "photo-k4.kmq"))
    # From standard input there is no file name: stdin.png.
    data = (in_tmp / "out" / "photo-k4.kmq").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "kmq", "decompress", "-", "-o", "out", "-q"], input=data, capture_output=True, cwd=in_tmp
    )
    assert result.returncode == 0, result.stderr
    assert (in_tmp / "out" / "stdin.png").read_bytes() == (in_tmp / "out" / "photo-k4.png").read_bytes()
