"""Perceptual quality of kmq against pngquant and libimagequant.

Images: the Kodak photographs, the photographs of a folder resized to 768
pixels wide (Lanczos), and images with alpha made here (Kodak photographs
under soft masks; icons, logos and a UI screen drawn with Pillow). A second
set with alpha, ``alpha-heldout``, is made from the folder's photographs
(ones the ``photos`` group leaves out at ``--every 3``) under other masks (a
linear fade, a vignette, hard anti-aliased cut-outs, a card with a
translucent band and a drop shadow) and three more drawings (flat icons
with shadows, a sticker with a gradient and text, a UI card): images the
alpha model was not chosen on. It runs only when asked for (``--groups``). For each
K in {16, 64, 256}, undithered and dithered, each tool quantizes each image
to a PNG at the same K:

* kmq: ``kmq.compress(image, K, dither=0 or 1)`` (defaults otherwise);
* pngquant: ``pngquant K`` (``--nofs`` when undithered), the CLI;
* libimagequant: ``imagequant.quantize_pil_image(max_colors=K,
  dithering_level=0 or 1)``.

Scores: SSIMULACRA2 (higher is better; ``ssimulacra2`` on PyPI, with its
worse of the image composited on a dark and on a light grey for images with
alpha) and the mean CIEDE2000
difference (lower is better; scikit-image; on images with alpha, the mean
over the image composited on black and on white), and DSSIM as the dssim
crate defines it, the metric of quantette's comparison with libimagequant
(lower is better; see ``dssim``; on images with alpha, the worse of the two
grey composites). For images with alpha it also records how much of the
alpha each tool keeps exact (``alpha_kept``: opaque pixels still at 255,
fully transparent ones still at 0). Writes a JSON file of every score and
prints Markdown tables: per K and setting, the number of images on which
kmq beats each tool, and the medians.

    python benchmarks/perceptual.py --kodak ../shared/bench/kodak \\
        --photos ../shared/bench/photos --out /tmp/perceptual.json

Needs the ``bench`` extra (scikit-image, ssimulacra2, imagequant) and the
``pngquant`` command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import kmq
from kmq._quantize import DEFAULT_DITHER

KS = (16, 64, 256)


def _resize(image: Image.Image, width: int = 768) -> Image.Image:
    if image.width <= width:
        return image
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.LANCZOS)


def soft_mask(image: Image.Image, seed: int) -> Image.Image:
    """The photograph under a blurred ellipse (alpha 0 outside, 255 inside,
    a soft ramp between)."""
    rng = np.random.default_rng(seed)
    w, h = image.size
    mask = Image.new("L", (w, h), 0)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    rx, ry = w * rng.uniform(0.3, 0.45), h * rng.uniform(0.3, 0.45)
    ImageDraw.Draw(mask).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(min(w, h) * 0.06))
    out = image.convert("RGBA")
    out.putalpha(mask)
    return out


def icon(seed: int, size: int = 256) -> Image.Image:
    """An app icon: a rounded square with a gradient, a glyph and a shadow,
    antialiased (drawn 4x, downscaled)."""
    rng = np.random.default_rng(seed)
    s = size * 4
    base = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    shadow = Image.new("L", (s, s), 0)
    ImageDraw.Draw(shadow).rounded_rectangle([s * 0.1, s * 0.14, s * 0.92, s * 0.96], radius=s * 0.18, fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(s * 0.03))
    base.paste((0, 0, 0, 255), (0, 0), shadow)
    top, bottom = rng.integers(40, 255, 3), rng.integers(0, 200, 3)
    t = np.linspace(0, 1, s)[:, None, None]
    grad = (top * (1 - t) + bottom * t).astype(np.uint8).repeat(s, axis=1)
    body = Image.fromarray(np.dstack([grad, np.full((s, s, 1), 255, np.uint8)]), "RGBA")
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([s * 0.08, s * 0.08, s * 0.9, s * 0.9], radius=s * 0.18, fill=255)
    base.paste(body, (0, 0), mask)
    draw = ImageDraw.Draw(base)
    glyph = tuple(int(v) for v in rng.integers(200, 256, 3)) + (int(rng.integers(180, 256)),)
    draw.ellipse([s * 0.3, s * 0.3, s * 0.68, s * 0.68], outline=glyph, width=int(s * 0.05))
    draw.line([s * 0.6, s * 0.6, s * 0.75, s * 0.75], fill=glyph, width=int(s * 0.06))
    return base.resize((size, size), Image.LANCZOS)


def logo(seed: int) -> Image.Image:
    """A flat logo on transparency: a few solid shapes and a wordmark."""
    rng = np.random.default_rng(seed)
    s = 4
    w, h = 480 * s, 160 * s
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colors = [tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,) for _ in range(3)]
    draw.ellipse([10 * s, 10 * s, 150 * s, 150 * s], fill=colors[0])
    draw.polygon([(80 * s, 30 * s), (140 * s, 130 * s), (20 * s, 130 * s)], fill=colors[1])
    for i in range(5):
        x = (170 + i * 58) * s
        draw.rounded_rectangle([x, 45 * s, x + 44 * s, 115 * s], radius=10 * s, fill=colors[2 if i % 2 else 1])
    return image.resize((w // s, h // s), Image.LANCZOS)


def ui_screen(seed: int) -> Image.Image:
    """A UI screenshot: window chrome, buttons, text-like bars, a photo
    thumbnail, a translucent overlay with a soft shadow."""
    rng = np.random.default_rng(seed)
    w, h = 800, 520
    image = Image.new("RGBA", (w, h), (246, 246, 248, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, w, 40], fill=(40, 44, 52, 255))
    for i in range(3):
        draw.ellipse([12 + i * 22, 13, 26 + i * 22, 27], fill=[(255, 95, 86, 255), (255, 189, 46, 255), (39, 201, 63, 255)][i])
    for row in range(9):
        y = 70 + row * 40
        draw.rectangle([30, y, 30 + int(rng.integers(120, 330)), y + 12], fill=(90, 90, 100, 255))
        draw.rectangle([30, y + 18, 30 + int(rng.integers(60, 200)), y + 24], fill=(170, 170, 180, 255))
    accent = tuple(int(v) for v in rng.integers(0, 200, 3)) + (255,)
    draw.rounded_rectangle([420, 420, 560, 460], radius=10, fill=accent)
    draw.rounded_rectangle([580, 420, 760, 460], radius=10, outline=accent, width=2)
    t = np.linspace(0, 1, 300)
    thumb = (np.stack([t * 255, 128 + 100 * np.sin(6 * t), 255 - t * 200], -1)[None, :, :] * np.linspace(0.5, 1, 200)[:, None, None])
    image.paste(Image.fromarray(thumb.astype(np.uint8)).convert("RGBA"), (430, 80))
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    shade = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shade).rounded_rectangle([250, 180, 610, 380], radius=14, fill=120)
    overlay.paste((0, 0, 0, 255), (0, 0), shade.filter(ImageFilter.GaussianBlur(12)))
    ImageDraw.Draw(overlay).rounded_rectangle([240, 170, 600, 370], radius=14, fill=(255, 255, 255, 235))
    image = Image.alpha_composite(image, overlay)
    # Round the window corners: the screenshot has alpha.
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, w - 1, h - 1], radius=12, fill=255)
    image.putalpha(Image.fromarray(np.minimum(np.asarray(image)[:, :, 3], np.asarray(mask))))
    return image


def _with_alpha(image: Image.Image, alpha: np.ndarray) -> Image.Image:
    out = image.convert("RGBA")
    out.putalpha(Image.fromarray(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)))
    return out


def fade_mask(image: Image.Image) -> Image.Image:
    """Opaque on the left, fading linearly to transparent on the right."""
    w, h = image.size
    t = np.linspace(0, 1, w)[None, :].repeat(h, 0)
    return _with_alpha(image, np.clip(1.3 - 1.6 * t, 0, 1))


def vignette_mask(image: Image.Image) -> Image.Image:
    """A radial fade from the centre."""
    w, h = image.size
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2))
    return _with_alpha(image, np.clip((1.05 - r) / 0.5, 0, 1) ** 1.5)


def cutout_mask(image: Image.Image, seed: int) -> Image.Image:
    """A hard cut-out (a random polygon and an ellipse), anti-aliased
    (drawn 4x, downscaled)."""
    rng = np.random.default_rng(seed)
    w, h = image.size
    s = 4
    mask = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(mask)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(0.25, 0.48, 9) * min(w, h) * s
    draw.polygon([(w * s / 2 + r * np.cos(a), h * s / 2 + r * np.sin(a)) for a, r in zip(angles, radii)], fill=255)
    draw.ellipse([w * s * 0.05, h * s * 0.05, w * s * 0.3, h * s * 0.4], fill=255)
    out = image.convert("RGBA")
    out.putalpha(mask.resize((w, h), Image.LANCZOS))
    return out


def glass_card(image: Image.Image) -> Image.Image:
    """The photograph on a rounded card whose lower band is translucent
    (alpha 0.55), with a soft black drop shadow around it."""
    w, h = image.size
    card = Image.new("L", (w, h), 0)
    ImageDraw.Draw(card).rounded_rectangle([40, 40, w - 60, h - 60], radius=30, fill=255)
    shadow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shadow).rounded_rectangle([55, 60, w - 40, h - 35], radius=30, fill=140)
    shadow = np.asarray(shadow.filter(ImageFilter.GaussianBlur(14))) / 255.0
    c = np.asarray(card) / 255.0
    alpha = np.where((np.arange(h)[:, None] > h * 0.7) & (c > 0), 0.55 * c, c)
    out_a = alpha + shadow * (1 - alpha)
    rgb = np.asarray(image.convert("RGB")).astype(np.float64)
    colour = np.where(out_a[..., None] > 0, rgb * (alpha / np.maximum(out_a, 1e-9))[..., None], 0)
    return Image.fromarray(np.dstack([np.clip(np.rint(colour), 0, 255), np.rint(out_a * 255)]).astype(np.uint8), "RGBA")


def flat_icons(seed: int, size: int = 384) -> Image.Image:
    """Nine flat round icons with a white square each and soft shadows."""
    rng = np.random.default_rng(seed)
    s = size * 4
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    for i in range(3):
        for j in range(3):
            x0, y0 = j * s / 3, i * s / 3
            shadow = Image.new("L", (s, s), 0)
            ImageDraw.Draw(shadow).ellipse([x0 + s * 0.05, y0 + s * 0.07, x0 + s * 0.3, y0 + s * 0.32], fill=90)
            image.paste((0, 0, 0, 255), (0, 0), shadow.filter(ImageFilter.GaussianBlur(s * 0.01)))
            draw = ImageDraw.Draw(image)
            draw.ellipse([x0 + s * 0.04, y0 + s * 0.04, x0 + s * 0.29, y0 + s * 0.29], fill=tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,))
            draw.rectangle([x0 + s * 0.12, y0 + s * 0.12, x0 + s * 0.21, y0 + s * 0.21], fill=(255, 255, 255, 255))
    return image.resize((size, size), Image.LANCZOS)


def sticker(seed: int, size: int = 320) -> Image.Image:
    """A hexagonal sticker: white rim, gradient face, translucent text, a
    coloured shadow."""
    rng = np.random.default_rng(seed)
    s = size * 4
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    shadow = Image.new("L", (s, s), 0)
    ImageDraw.Draw(shadow).regular_polygon((s * 0.52, s * 0.54, s * 0.42), 6, fill=150)
    image.paste((20, 10, 40, 255), (0, 0), shadow.filter(ImageFilter.GaussianBlur(s * 0.025)))
    draw = ImageDraw.Draw(image)
    draw.regular_polygon((s * 0.5, s * 0.5, s * 0.42), 6, fill=(255, 255, 255, 255))
    t = np.linspace(0, 1, s)[None, :, None]
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    face = Image.new("L", (s, s), 0)
    ImageDraw.Draw(face).regular_polygon((s * 0.5, s * 0.5, s * 0.37), 6, fill=255)
    image.paste(Image.fromarray((a * (1 - t) + b * t).astype(np.uint8).repeat(s, 0), "RGB"), (0, 0), face)
    draw.text((s * 0.3, s * 0.4), "kmq", fill=(255, 255, 255, 220), font_size=int(s * 0.15))
    return image.resize((size, size), Image.LANCZOS)


def ui_card(seed: int) -> Image.Image:
    """A UI card on transparency: drop shadow, header, text bars, a
    translucent badge, a button (fewer than 256 colours)."""
    rng = np.random.default_rng(seed)
    w, h = 640, 420
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    shadow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shadow).rounded_rectangle([30, 36, w - 30, h - 20], radius=24, fill=100)
    image.paste((0, 0, 0, 255), (0, 0), shadow.filter(ImageFilter.GaussianBlur(16)))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([24, 24, w - 36, h - 36], radius=22, fill=(250, 250, 252, 255))
    accent = tuple(int(v) for v in rng.integers(0, 220, 3))
    draw.rounded_rectangle([24, 24, w - 36, 110], radius=22, fill=accent + (255,))
    for row in range(5):
        draw.rounded_rectangle([50, 140 + row * 40, 50 + int(rng.integers(150, 450)), 156 + row * 40], radius=8, fill=(120, 120, 130, 255))
    draw.ellipse([w - 140, 130, w - 60, 210], fill=accent + (160,))
    draw.rounded_rectangle([w - 250, h - 100, w - 60, h - 56], radius=20, fill=accent + (255,))
    return image


def heldout_set(photos: Path) -> list[tuple[str, str, Image.Image]]:
    """The ``alpha-heldout`` group: [(group, name, image)]."""
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    # The photos group takes files[::3] at --every 3: these are others.
    masks = [("fade", fade_mask), ("vignette", vignette_mask), ("cutout", lambda im: cutout_mask(im, 3)),
             ("glass", glass_card), ("cutout2", lambda im: cutout_mask(im, 7))]
    images = []
    for index, (tag, make) in zip((1, 2, 4, 5, 7), masks):
        if index < len(files):
            images.append(("alpha-heldout", f"{files[index].stem}-{tag}", make(_resize(Image.open(files[index]).convert("RGB")))))
    images.append(("alpha-heldout", "flaticons", flat_icons(5)))
    images.append(("alpha-heldout", "sticker", sticker(2)))
    images.append(("alpha-heldout", "uicard", ui_card(4)))
    return images


def image_set(kodak: Path | None, photos: Path | None, every: int, groups=None) -> list[tuple[str, str, Image.Image]]:
    """[(group, name, image)]; the ``alpha-heldout`` group only if it is in
    ``groups``."""
    images = []
    kodak_files = sorted(kodak.glob("*.png")) if kodak else []
    for path in kodak_files[::every]:
        images.append(("kodak", path.stem, Image.open(path).convert("RGB")))
    if photos:
        for path in sorted(photos.iterdir())[::every]:
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
                images.append(("photos", path.stem, _resize(Image.open(path).convert("RGB"))))
    for i, path in enumerate(kodak_files[1::max(1, 2 * every)][:4]):
        images.append(("alpha", f"{path.stem}-mask", soft_mask(Image.open(path).convert("RGB"), i)))
    for i in range(2):
        images.append(("alpha", f"icon{i}", icon(i)))
    images.append(("alpha", "logo", logo(0)))
    images.append(("alpha", "ui", ui_screen(0)))
    if photos and groups and "alpha-heldout" in groups:
        images += heldout_set(photos)
    return images


def run_kmq(image, k, dither, path):
    # Dithered: kmq's default level (as pngquant's and libimagequant's are theirs).
    level = DEFAULT_DITHER if dither else 0.0
    kmq.compress(np.asarray(image), k, dither=level).save(path, format="png")


def run_pngquant(image, k, dither, path, work):
    src = os.path.join(work, "src.png")
    image.save(src)
    cmd = ["pngquant", "--force", "--output", path, str(k), src]
    if not dither:
        cmd.insert(1, "--nofs")
    subprocess.run(cmd, check=True)


def run_imagequant(image, k, dither, path):
    import imagequant

    imagequant.quantize_pil_image(image.convert("RGBA"), dithering_level=float(dither), max_colors=k).save(path)


def ciede2000(original: np.ndarray, result: np.ndarray) -> float:
    """Mean CIEDE2000; with alpha, the mean over composites on black and white."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    def lab(rgb):
        return rgb2lab(rgb.astype(np.float64) / 255.0)

    if original.shape[2] == 3:
        return float(deltaE_ciede2000(lab(original), lab(result)).mean())
    scores = []
    for background in (0.0, 255.0):
        def seen(rgba):
            a = rgba[:, :, 3:4].astype(np.float64) / 255.0
            return np.rint(rgba[:, :, :3] * a + background * (1 - a)).astype(np.uint8)

        scores.append(float(deltaE_ciede2000(lab(seen(original)), lab(seen(result))).mean()))
    return float(np.mean(scores))


# The dssim crate's constants, as its published source has them: the
# weights of its 5 scales, finest first, and the 3-tap kernel that, applied
# twice, is its blur.
_DSSIM_WEIGHTS = (0.028, 0.197, 0.322, 0.298, 0.155)
_DSSIM_TAPS = (0.30875886, 0.3824828, 0.30875886)


def dssim(original: np.ndarray, result: np.ndarray) -> float:
    """DSSIM as the dssim crate defines it (the metric of quantette's
    published comparison with libimagequant), written here with NumPy and
    SciPy: the crate is a Rust program that neither PyPI nor Debian
    packages. ``original``, ``result``: (h, w, 3) uint8 sRGB. Returns
    1 / SSIM - 1: 0 for identical images, lower is better.

    Each scale is the linear-light image halved by 2 x 2 means (5 scales,
    while both sides stay at least 8 px), in the crate's L*a*b* variant
    (L = 1.05 (f(Y) - 16/116); a and b are 500/220 and 200/220 of the
    f differences, offset to be positive). Chroma is
    blurred once before the statistics; means, variances and the covariance
    come from a 5-tap blur and are averaged over the three channels per
    pixel. A scale's score is 1 minus the mean absolute deviation of its
    SSIM map from the map's mean raised to 0.5^n (n = 0 at full size); the
    scores are weighted as the crate weighs them. An independent reading
    of the published method, not checked against the crate's output.
    """
    from scipy.ndimage import convolve1d

    taps = np.convolve(_DSSIM_TAPS, _DSSIM_TAPS)

    def blur(c):
        return convolve1d(convolve1d(c, taps, axis=0, mode="nearest"), taps, axis=1, mode="nearest")

    def linear(rgb):
        v = rgb.astype(np.float64) / 255.0
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)

    def lab(lin):
        r, g, b = lin[..., 0], lin[..., 1], lin[..., 2]
        x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.9505
        y = 0.2126 * r + 0.7152 * g + 0.0722 * b
        z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.089

        def f(t):
            return np.where(t > 216 / 24389, np.cbrt(t) - 16 / 116, t * 24389 / (27 * 116))

        fx, fy, fz = f(x), f(y), f(z)
        chroma_a = (500 / 220) * (fx - fy) + 86.2 / 220
        chroma_b = (200 / 220) * (fy - fz) + 107.9 / 220
        return [fy * 1.05, blur(chroma_a), blur(chroma_b)]

    def halve(img):
        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
        return img[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))

    c1, c2 = 0.01**2, 0.03**2
    x_lin, y_lin = linear(original), linear(result)
    total = weights = 0.0
    for n, weight in enumerate(_DSSIM_WEIGHTS):
        if n:
            if min(x_lin.shape[:2]) < 8:
                break
            x_lin, y_lin = halve(x_lin), halve(y_lin)
        xs, ys = lab(x_lin), lab(y_lin)
        mu_x, mu_y = [blur(c) for c in xs], [blur(c) for c in ys]
        mxx = sum(m * m for m in mu_x) / 3
        myy = sum(m * m for m in mu_y) / 3
        mxy = sum(a * b for a, b in zip(mu_x, mu_y)) / 3
        sxx = sum(blur(c * c) - m * m for c, m in zip(xs, mu_x)) / 3
        syy = sum(blur(c * c) - m * m for c, m in zip(ys, mu_y)) / 3
        sxy = sum(blur(a * b) - ma * mb for a, b, ma, mb in zip(xs, ys, mu_x, mu_y)) / 3
        ssim_map = (2 * mxy + c1) * (2 * sxy + c2) / ((mxx + myy + c1) * (sxx + syy + c2))
        mean = max(float(ssim_map.mean()), 0.0) ** (0.5**n)
        total += weight * (1.0 - float(np.abs(mean - ssim_map).mean()))
        weights += weight
    return 1.0 / max(total / weights, np.finfo(float).eps) - 1.0


def _composite_files(original_path, result_path, background):
    """Both images composited on a grey ``background`` (0..255), as RGB PNG
    files beside the originals: (original, result) paths."""
    out = []
    for path in (original_path, result_path):
        rgba = np.asarray(Image.open(path).convert("RGBA")).astype(np.float64)
        a = rgba[:, :, 3:4] / 255.0
        seen = np.rint(rgba[:, :, :3] * a + background * (1.0 - a)).astype(np.uint8)
        target = f"{path}.on{background}.png"
        Image.fromarray(seen, "RGB").save(target)
        out.append(target)
    return out


def score(original_path, result_path, has_alpha):
    import ssimulacra2

    if has_alpha:
        # What is seen: the worse of the composites on a dark and a light
        # grey (the intent of ssimulacra2's compute_ssimulacra2_with_alpha,
        # which in ssimulacra2 0.3.0 converts to RGB before blending and so
        # scores the colour hidden under transparent pixels).
        s2 = min(ssimulacra2.compute_ssimulacra2(*_composite_files(original_path, result_path, bg)) for bg in (26, 230))
    else:
        s2 = ssimulacra2.compute_ssimulacra2(original_path, result_path)
    mode = "RGBA" if has_alpha else "RGB"
    original = np.asarray(Image.open(original_path).convert(mode))
    result = np.asarray(Image.open(result_path).convert(mode))
    if has_alpha:
        # What is seen, as for SSIMULACRA2: the worse of the two greys.
        d = max(dssim(*(np.asarray(Image.open(p)) for p in _composite_files(original_path, result_path, bg))) for bg in (26, 230))
    else:
        d = dssim(original, result)
    return float(s2), ciede2000(original, result), d


def alpha_kept(original: np.ndarray, result: np.ndarray) -> dict:
    """:func:`kmq.metrics.alpha_kept` of ``result`` against ``original`` (H x
    W x 4 uint8) as {"opaque": float | None, "transparent": float | None}.
    An opaque pixel written at 254 lets the page show through it; a
    background written at alpha 1-2 tints the page under the whole image."""
    opaque, transparent = kmq.metrics.alpha_kept(original, result)
    return {"opaque": opaque, "transparent": transparent}


TOOLS = ("kmq", "pngquant", "imagequant")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path)
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--every", type=int, default=1, help="take every n-th image of each folder")
    parser.add_argument("--ks", default=",".join(map(str, KS)))
    parser.add_argument("--out", type=Path, default=Path("perceptual.json"))
    parser.add_argument("--groups", default="kodak,photos,alpha", help="which image groups to run (also: alpha-heldout, with --photos)")
    parser.add_argument("--summary", type=Path, nargs="+", help="only print the tables of earlier runs' JSON files")
    args = parser.parse_args(argv)
    if args.summary:
        print(summarise([row for path in args.summary for row in json.loads(path.read_text())]))
        return
    groups = set(args.groups.split(","))
    ks = [int(v) for v in args.ks.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for group, name, image in image_set(args.kodak, args.photos, args.every, groups):
            if group not in groups:
                continue
            has_alpha = image.mode == "RGBA"
            original_path = os.path.join(work, f"{name}.png")
            image.save(original_path)
            for k in ks:
                for dither in (0, 1):
                    row = {"group": group, "image": name, "k": k, "dither": dither}
                    for tool in TOOLS:
                        path = os.path.join(work, f"{name}-{tool}.png")
                        started = time.perf_counter()
                        if tool == "kmq":
                            run_kmq(image, k, dither, path)
                        elif tool == "pngquant":
                            run_pngquant(image, k, dither, path, work)
                        else:
                            run_imagequant(image, k, dither, path)
                        seconds = time.perf_counter() - started
                        s2, de, ds = score(original_path, path, has_alpha)
                        row[tool] = {"ssimulacra2": s2, "ciede2000": de, "dssim": ds, "bytes": os.path.getsize(path), "seconds": seconds}
                        if has_alpha:
                            row[tool]["alpha_kept"] = alpha_kept(
                                np.asarray(image), np.asarray(Image.open(path).convert("RGBA"))
                            )
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(summarise(rows))


def summarise(rows) -> str:
    lines = []
    groups = sorted({r["group"] for r in rows})
    for metric, better in (("ssimulacra2", max), ("ciede2000", min), ("dssim", min)):
        if not all(metric in r["kmq"] for r in rows):
            continue  # a JSON file from before the metric was scored
        # DSSIM's scale has no fixed range: the ratio to libimagequant's is
        # the figure quantette publishes ("about 10 % lower").
        ratio = metric == "dssim"
        lines.append(f"\n{metric} ({'higher' if better is max else 'lower'} is better): kmq wins / images, medians kmq | pngquant | imagequant\n")
        lines.append(
            "| images | K | dither | kmq > pngquant | kmq > imagequant | median kmq | median pngquant | median imagequant | "
            + ("median kmq / imagequant | " if ratio else "")
            + "bytes kmq / pngquant |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|" + ("---|" if ratio else ""))
        for group in groups + ["all"]:
            for k in sorted({r["k"] for r in rows}):
                for dither in (0, 1):
                    sel = [r for r in rows if r["k"] == k and r["dither"] == dither and (group == "all" or r["group"] == group)]
                    if not sel:
                        continue
                    def wins(other):
                        return sum(1 for r in sel if better(r["kmq"][metric], r[other][metric]) == r["kmq"][metric] and r["kmq"][metric] != r[other][metric])
                    med = {t: statistics.median(r[t][metric] for r in sel) for t in TOOLS}
                    size = statistics.median(r["kmq"]["bytes"] / r["pngquant"]["bytes"] for r in sel)
                    digits = 5 if ratio else 2
                    extra = ""
                    if ratio:
                        extra = f" {statistics.median(_ratio(r['kmq'][metric], r['imagequant'][metric]) for r in sel):.2f} |"
                    lines.append(
                        f"| {group} | {k} | {'yes' if dither else 'no'} | {wins('pngquant')}/{len(sel)} | {wins('imagequant')}/{len(sel)} "
                        f"| {med['kmq']:.{digits}f} | {med['pngquant']:.{digits}f} | {med['imagequant']:.{digits}f} |{extra} {size:.2f} |"
                    )
    lines += _alpha_kept_table(rows)
    return "\n".join(lines)


def _ratio(a: float, b: float) -> float:
    """a / b, where two exact results (DSSIM 0 and 0) are a tie (1) and an
    exact b against an inexact a is infinitely worse."""
    if b == 0.0:
        return 1.0 if a == 0.0 else math.inf
    return a / b


def _alpha_kept_table(rows) -> list[str]:
    """Per group, K and setting, for each tool: on how many images at least
    99 % of the opaque pixels stay at alpha 255 and every fully transparent
    pixel stays at alpha 0, and the lowest fraction of each over the images."""
    rows = [r for r in rows if "alpha_kept" in r["kmq"]]
    if not rows:
        return []
    lines = [
        "\nAlpha kept: images with >= 99 % of opaque pixels at 255 / with every transparent pixel at 0; "
        "lowest fraction of each\n",
        "| images | K | dither | " + " | ".join(TOOLS) + " |",
        "|---|---|---|" + "---|" * len(TOOLS),
    ]
    for group in sorted({r["group"] for r in rows}):
        for k in sorted({r["k"] for r in rows}):
            for dither in (0, 1):
                sel = [r for r in rows if r["group"] == group and r["k"] == k and r["dither"] == dither]
                if not sel:
                    continue
                cells = []
                for tool in TOOLS:
                    opaque = [r[tool]["alpha_kept"]["opaque"] for r in sel if r[tool]["alpha_kept"]["opaque"] is not None]
                    clear = [r[tool]["alpha_kept"]["transparent"] for r in sel if r[tool]["alpha_kept"]["transparent"] is not None]
                    cells.append(
                        f"{sum(v >= 0.99 for v in opaque)}/{len(opaque)}, {sum(v == 1.0 for v in clear)}/{len(clear)}"
                        f" (lowest {min(opaque, default=float('nan')):.1%}, {min(clear, default=float('nan')):.1%})"
                    )
                lines.append(f"| {group} | {k} | {'yes' if dither else 'no'} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
