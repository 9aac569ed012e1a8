"""kmq serve end to end in a real browser: Debian's Chromium driven by
Playwright, `kmq serve` started as a subprocess on 127.0.0.1.

Environment (optional):
  KMQ_SERVE_TIMINGS=FILE   write the latency measurement (JSON) to FILE
  KMQ_SCREENSHOTS=FOLDER   save serve-desktop.png and serve-phone.png there
                           (after the curve is complete)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kmq
from kmq.metrics import _share_text as _share
from kmq._quantize import DEFAULT_DITHER

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        "Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("starlette")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
SAMPLE = kmq.sample_image_path()


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmq", "serve", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("kmq: serving http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
    yield line.split()[2]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert proc.stderr.read().strip().splitlines()[-1] == "kmq: interrupted"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page, errors


def wait_shown(page, k, count, timeout=120_000):
    """Wait for the count-th result shown, at K = k."""
    page.wait_for_function(
        "([k, n]) => window.kmq.timings.length >= n && window.kmq.timings[n - 1].k === k"
        " && document.getElementById('viewer').dataset.k === String(k)",
        arg=[k, count], timeout=timeout,
    )


def wait_complete(page, timeout=180_000):
    page.wait_for_function(
        "() => { const v = document.getElementById('viewer'); const t = window.kmq.timings;"
        " return v.dataset.state === 'complete' && t.length && t[t.length - 1].numbers_ms !== null"
        " && v.dataset.k === String(t[t.length - 1].k); }",
        timeout=timeout,
    )


def text(page, selector):
    return page.eval_on_selector(selector, "el => el.textContent")


def expected_row(n, original):
    return f"{n:,} B{100 * n / original:.1f} %"


def cli_line(tmp_path, name):
    run = subprocess.run([sys.executable, "-m", "kmq", "compress", name], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 4
    return run.stderr.strip()


def test_page_end_to_end(server, browser, tmp_path):
    page, errors = open_page(browser, server, 1280, 800)
    page.set_input_files("#file", str(SAMPLE))
    wait_shown(page, 16, 1)

    # Move the K slider with the mouse: press on the thumb, drag left.
    box = page.locator("#k-range").bounding_box()
    y = box["y"] + box["height"] / 2
    thumb = box["x"] + 8 + (box["width"] - 16) * (16 - 2) / 254
    page.mouse.move(thumb, y)
    page.mouse.down()
    page.mouse.move(thumb - 0.4 * (thumb - box["x"]), y, steps=5)
    page.mouse.move(thumb - 0.6 * (thumb - box["x"]), y, steps=5)
    page.mouse.up()
    k = int(page.input_value("#k-range"))
    assert 2 <= k < 16 and page.input_value("#k-number") == str(k)
    wait_complete(page)
    assert page.get_attribute("#viewer", "data-k") == str(k)

    # The numbers shown are kmq.compress's with the same settings (seed 0).
    c = kmq.compress(SAMPLE, k, seed=0)
    m = c.metrics()
    original = SAMPLE.stat().st_size
    assert text(page, "#n-k") == f"{c.k} colours"
    assert text(page, "#n-image") == "768 × 512 RGB"
    assert text(page, "#n-original") == f"{original:,} B"
    assert text(page, "#n-png") == expected_row(len(c.to_bytes("png")), original)
    assert text(page, "#n-webp") == expected_row(len(c.to_bytes("webp")), original)
    assert text(page, "#n-kmq") == expected_row(len(c.to_bytes("kmq")), original)
    assert text(page, "#n-psnr") == f"{m.psnr:.2f} dB"
    assert text(page, "#n-ssim") == f"{m.ssim:.4f}"
    assert text(page, "#n-perceptual") == f"{kmq.metrics.perceptual_score(c.source.pixels, c.reconstruct()):.1f}"
    assert text(page, "#n-ratio") == f"{m.ratio:.4f} = {m.ratio_to_1:.1f}:1"
    assert page.locator("#row-alpha").is_hidden()  # an RGB image
    assert page.locator("#palette .swatch").count() == c.k
    counts = np.bincount(c.labels.ravel(), minlength=c.k)
    top = c.palette[int(np.argmax(counts))]
    assert page.get_attribute("#palette .swatch:first-child", "title").startswith("#%02x%02x%02x" % tuple(top))

    # Drag the divider to a quarter of the view.
    viewer = page.locator("#viewer").bounding_box()
    handle = page.locator("#divider").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(viewer["x"] + 0.25 * viewer["width"], handle["y"] + handle["height"] / 2, steps=8)
    page.mouse.up()
    assert page.get_attribute("#divider", "aria-valuenow") == "25"
    assert page.eval_on_selector("#layer-result", "el => el.style.clipPath") == "inset(0px 0px 0px 25%)"

    # Zoom to 1:1 and beyond: both sides keep one transform, pixels drawn sharp.
    page.click("#zoom-1")
    assert text(page, "#zoom-level") == "100 %"
    page.click("#zoom-in")
    transforms = page.eval_on_selector_all(".layer img", "els => els.map(e => e.style.transform)")
    assert transforms[0] == transforms[1] and "scale(1.5)" in transforms[0]
    assert page.eval_on_selector("#img-result", "el => getComputedStyle(el).imageRendering") == "pixelated"
    page.mouse.move(viewer["x"] + 300, viewer["y"] + 300)
    page.mouse.down()
    page.mouse.move(viewer["x"] + 340, viewer["y"] + 320, steps=3)
    page.mouse.up()
    moved = page.eval_on_selector_all(".layer img", "els => els.map(e => e.style.transform)")
    assert moved[0] == moved[1] != transforms[0]

    # Download the PNG: its pixels are the result's.
    with page.expect_download() as download:
        page.click("#dl-png")
    assert download.value.suggested_filename == f"kodim23-k{k}.png"
    with Image.open(download.value.path()) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), c.reconstruct())

    # A hostile file: the CLI's message, and the page and server go on.
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an image\n")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#message:not([hidden])")
    assert text(page, "#message") == cli_line(tmp_path, "notes.txt")
    cut = tmp_path / "cut.png"
    cut.write_bytes(SAMPLE.read_bytes()[:20000])
    page.set_input_files("#file", str(cut))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('cut.png')")
    assert text(page, "#message") == cli_line(tmp_path, "cut.png")
    shown = page.evaluate("window.kmq.timings.length")
    page.fill("#k-number", "8")
    page.press("#k-number", "Enter")
    wait_shown(page, 8, shown + 1)
    assert errors == []

    folder = os.environ.get("KMQ_SCREENSHOTS")
    if folder:
        page.click("#zoom-fit")
        page.set_input_files("#file", str(SAMPLE))
        page.fill("#k-number", "16")
        page.press("#k-number", "Enter")
        wait_complete(page)
        page.wait_for_function("() => document.getElementById('curve-note').textContent.startsWith('seed')", timeout=600_000)
        # The divider back to the middle, by its keyboard: End, then Left x 25.
        page.focus("#divider")
        page.keyboard.press("End")
        for _ in range(25):
            page.keyboard.press("ArrowLeft")
        assert page.get_attribute("#divider", "aria-valuenow") == "50"
        page.focus("#k-number")
        page.screenshot(path=str(Path(folder) / "serve-desktop.png"))


def test_alpha_row_for_an_image_with_alpha(server, browser, tmp_path, round_mask):
    # The photograph at 192 x 128 under a soft round mask: at K = 16 a few
    # opaque pixels near the ramp leave 255, every transparent one stays 0.
    pixels = np.asarray(Image.open(SAMPLE))[::4, ::4]
    masked = tmp_path / "masked.png"
    Image.fromarray(np.dstack([pixels, round_mask(*pixels.shape[:2])]), "RGBA").save(masked)
    m = kmq.compress(masked, 16, seed=0).metrics()
    assert m.opaque_kept < 1 and m.transparent_kept == 1

    page, errors = open_page(browser, server, 1280, 800)
    page.set_input_files("#file", str(masked))
    wait_shown(page, 16, 1)
    assert text(page, "#n-image") == "192 × 128 RGBA"
    assert page.locator("#row-alpha").is_visible()
    # The CLI report's percentages: 100 % only when exact.
    assert text(page, "#n-alpha") == f"opaque at 255: {_share(m.opaque_kept)} · transparent at 0: {_share(m.transparent_kept)}"
    assert text(page, "#n-alpha").endswith("transparent at 0: 100 %")
    # The GIF button says that GIF's on/off transparency changes this result.
    assert text(page, "#dl-gif") == "GIF (on/off alpha)"
    assert page.get_attribute("#dl-gif", "title").startswith("GIF has on/off transparency: ")
    # The transparent entry's swatch shows the checkerboard through it; an opaque one does not.
    backgrounds = page.eval_on_selector_all(
        "#palette .swatch", "els => els.map(e => [e.title, getComputedStyle(e.querySelector('i')).backgroundImage])"
    )
    clear = [image for title, image in backgrounds if " alpha 0 " in title]
    opaque = [image for title, image in backgrounds if " alpha " not in title]
    assert len(clear) == 1 and "conic-gradient" in clear[0]
    assert opaque and all(image == "none" for image in opaque)
    # Back to an RGB image: the row goes.
    page.set_input_files("#file", str(SAMPLE))
    wait_shown(page, 16, 2)
    assert page.locator("#row-alpha").is_hidden()
    assert text(page, "#dl-gif") == "GIF" and page.get_attribute("#dl-gif", "title") == ""
    assert errors == []


def test_page_at_phone_width(server, browser, tmp_path):
    page, errors = open_page(browser, server, 420, 900)
    page.click("#use-sample")
    wait_complete(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 420  # nothing wider than the phone
    for selector in ("#viewer", "#k-range", "#downloads", "#numbers"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 420, selector
    folder = os.environ.get("KMQ_SCREENSHOTS")
    if folder:
        page.wait_for_function("() => document.getElementById('curve-note').textContent.startsWith('seed')", timeout=600_000)
        page.screenshot(path=str(Path(folder) / "serve-phone.png"), full_page=True)
    assert errors == []


def test_latency_one_megapixel_k64(server, browser, tmp_path):
    """Slider stop -> result shown, 1 MP photograph at K = 64 (a K and seed
    not computed before: the engine is warm, the cache is not). Measured,
    printed, written to $KMQ_SERVE_TIMINGS; no timed assertion."""
    big = tmp_path / "parrots-1mp.png"
    with Image.open(SAMPLE) as image:
        image.convert("RGB").resize((1224, 816), Image.LANCZOS).save(big)
    page, errors = open_page(browser, server, 1280, 800)
    page.set_input_files("#file", str(big))
    wait_shown(page, 16, 1)
    set_k = "k => { const r = document.getElementById('k-range'); r.value = k; r.dispatchEvent(new Event('input', {bubbles: true})); }"
    page.click("#more summary")  # the settings other than K
    shown_ms = []
    for seed in range(1, 4):
        page.evaluate(set_k, 48)
        wait_shown(page, 48, page.evaluate("window.kmq.timings.length") + 1)
        # A new seed at K = 48, every figure shown: the slider then stops at 64.
        page.fill("#opt-seed", str(seed))
        page.dispatch_event("#opt-seed", "change")
        wait_complete(page)
        count = page.evaluate("window.kmq.timings.length")
        page.evaluate(set_k, 64)
        wait_shown(page, 64, count + 1)
        timing = page.evaluate(f"window.kmq.timings[{count}]")
        assert timing["seed"] == str(seed)
        shown_ms.append(timing["shown_ms"])
    # The figures shown for it are kmq.compress's.
    c = kmq.compress(big, 64, seed=3)
    assert text(page, "#n-psnr") == f"{c.metrics(with_ssim=False).psnr:.2f} dB"
    result = {
        "image": "1224 x 816 (the sample photograph, resized)",
        "k": 64,
        "shown_ms": [round(v, 1) for v in shown_ms],
        "median_ms": round(statistics.median(shown_ms), 1),
        "load_average": os.getloadavg(),
    }
    print("kmq serve latency:", json.dumps(result))
    if os.environ.get("KMQ_SERVE_TIMINGS"):
        Path(os.environ["KMQ_SERVE_TIMINGS"]).write_text(json.dumps(result, indent=2) + "\n")
    assert errors == []


def shown_count(page) -> int:
    return page.evaluate("window.kmq.timings.length")


def wait_state(page, state, k, after, timeout=180_000):
    """Wait for a result at K = k shown after the ``after``-th, and for the
    viewer to reach ``state``: "measured" (every figure but maybe the WebP
    size) or "complete"; or for "error" (no result)."""
    page.wait_for_function(
        "([s, k, n]) => { const v = document.getElementById('viewer'); const t = window.kmq.timings;"
        " if (s === 'error') return v.dataset.state === 'error';"
        " const ok = s === 'measured' ? ['measured', 'complete'] : [s];"
        " return t.length > n && t[t.length - 1].k === k && ok.includes(v.dataset.state) && v.dataset.k === String(k); }",
        arg=[state, k, after], timeout=timeout,
    )


def set_range(page, selector, value):
    page.eval_on_selector(selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))


def check_numbers(page, c, *, webp=True):
    m = c.metrics()
    original = SAMPLE.stat().st_size
    assert text(page, "#n-png") == expected_row(len(c.to_bytes("png")), original)
    assert text(page, "#n-kmq") == expected_row(len(c.to_bytes("kmq")), original)
    if webp:
        assert text(page, "#n-webp") == expected_row(len(c.to_bytes("webp")), original)
    assert text(page, "#n-psnr") == f"{m.psnr:.2f} dB"
    assert text(page, "#n-ssim") == f"{m.ssim:.4f}"
    assert text(page, "#n-perceptual") == f"{kmq.metrics.perceptual_score(c.source.pixels, c.reconstruct()):.1f}"
    assert page.locator("#palette .swatch").count() == c.k


def test_space_dithering_speed_and_quality_on_the_page(server, browser, tmp_path):
    page, errors = open_page(browser, server, 420, 900)  # at a phone's width: the controls are beside K
    page.click("#use-sample")
    wait_state(page, "measured", 16, 0)
    assert text(page, "#opt-dither-value") == f"{DEFAULT_DITHER:.2f}"  # not set: kmq compress's default
    assert "auto" in page.get_attribute("#opt-dither-value", "class")

    # Speed 11 with the dithering not set: kmq compress's rule turns it off.
    n = shown_count(page)
    set_range(page, "#opt-speed", 11)
    wait_state(page, "measured", 16, n)
    assert text(page, "#opt-speed-value") == "11" and text(page, "#opt-dither-value") == "0.00"
    check_numbers(page, kmq.compress(SAMPLE, 16, n_init=1, tol=3e-2, dither=0), webp=False)

    # Back to speed 4; RGB, half dithering: the figures are kmq.compress's with those settings.
    n = shown_count(page)
    set_range(page, "#opt-speed", 4)
    page.select_option("#opt-space", "rgb")
    set_range(page, "#opt-dither", 0.5)
    wait_state(page, "complete", 16, n)
    assert text(page, "#opt-dither-value") == "0.50" and "auto" not in page.get_attribute("#opt-dither-value", "class")
    timing = page.evaluate("window.kmq.timings[window.kmq.timings.length - 1]")
    assert (timing["space"], timing["dither"]) == ("rgb", "0.5")
    check_numbers(page, kmq.compress(SAMPLE, 16, space="rgb", dither=0.5))
    assert "/result.png?k=16&space=rgb&dither=0.5&speed=4&seed=0&" in page.get_attribute("#dl-png", "href")

    # A quality target: the fewest colours, up to K, reaching MAX (a MAX a
    # little below what 64 colours reach).
    target = int(kmq.compress(SAMPLE, 64, space="rgb", dither=0.5, quality=(0, 100)).quality) - 5
    n = shown_count(page)
    page.fill("#k-number", "64")
    page.press("#k-number", "Enter")
    page.fill("#opt-quality-max", str(target))
    page.dispatch_event("#opt-quality-max", "change")
    c = kmq.compress(SAMPLE, 64, space="rgb", dither=0.5, quality=(0, target))
    page.wait_for_function("t => document.getElementById('n-k').textContent === t", arg=f"{c.k} of 64 colours", timeout=180_000)
    wait_state(page, "measured", 64, n)
    assert c.k < 64 and text(page, "#n-k") == f"{c.k} of 64 colours"
    assert text(page, "#n-quality") == f"{c.quality:.1f} (target 0–{target})"
    check_numbers(page, c, webp=False)

    # Below the minimum: the CLI's message (its exit 99), and no result shown.
    run = subprocess.run(
        [sys.executable, "-m", "kmq", "compress", str(SAMPLE), "-k", "64", "--space", "rgb", "--dither", "0.5",
         "--quality", "99-100", "-o", str(tmp_path / "out.png")],
        capture_output=True, text=True,
    )
    assert run.returncode == 99 and not (tmp_path / "out.png").exists()
    page.fill("#opt-quality-max", "100")
    page.fill("#opt-quality-min", "99")
    page.dispatch_event("#opt-quality-min", "change")
    wait_state(page, "error", 64, 0)
    assert text(page, "#message") == run.stderr.strip()
    assert page.eval_on_selector("#layer-result", "el => getComputedStyle(el).visibility") == "hidden"
    assert page.get_attribute("#dl-png", "aria-disabled") == "true" and text(page, "#n-png") == "–"
    # The target off again: a result, and the message gone.
    n = shown_count(page)
    page.fill("#opt-quality-min", "")
    page.fill("#opt-quality-max", "")
    page.dispatch_event("#opt-quality-max", "change")
    wait_state(page, "measured", 64, n)
    assert page.locator("#message").is_hidden()
    check_numbers(page, kmq.compress(SAMPLE, 64, space="rgb", dither=0.5), webp=False)

    # The curve starts once every figure is shown; moving K pauses it (its
    # request is aborted) and it goes on after: all 8 K values, 3 dots each.
    page.wait_for_function("() => document.querySelectorAll('#curve circle').length >= 3", timeout=600_000)
    n = shown_count(page)
    set_range(page, "#k-range", 32)
    wait_state(page, "complete", 32, n)
    page.wait_for_function("() => document.getElementById('curve-note').textContent.startsWith('seed')", timeout=600_000)
    assert text(page, "#curve-note") == "seed 0; click to set K"
    assert page.locator("#curve circle").count() == 3 * 8
    assert errors == []
