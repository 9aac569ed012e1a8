"""How a :class:`kmq.Compressed` shows itself in Jupyter: the rebuilt
image (PNG, downscaled to at most ``NOTEBOOK_MAX_SIDE`` a side) with its K,
compression ratio, PSNR and perceptual score. Part of the core, not of
:mod:`kmq.plot`: it needs Pillow only, never matplotlib."""

from __future__ import annotations

import base64
import html
import math

import numpy as np

__all__ = ["compressed_png", "compressed_caption", "compressed_html", "png_data_url"]


def png_data_url(png: bytes) -> str:
    """PNG bytes as a ``data:`` URL for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _format_psnr(psnr: float) -> str:
    return "lossless" if math.isinf(psnr) else f"{psnr:.1f} dB"


#: Longest side of the image a notebook shows; larger images are shown
#: downscaled so the notebook file stays small.
NOTEBOOK_MAX_SIDE = 1024


def _preview_labels(labels: np.ndarray) -> np.ndarray:
    """Labels (H, W) downscaled by nearest neighbour so the longest side is
    at most NOTEBOOK_MAX_SIDE (a preview keeps exactly the palette's
    colours)."""
    height, width = labels.shape
    step = math.ceil(max(height, width) / NOTEBOOK_MAX_SIDE)
    return labels if step <= 1 else labels[::step, ::step]


def compressed_png(compressed) -> bytes:
    """The rebuilt image of a Compressed as PNG bytes (indexed when K <=
    256), downscaled to at most NOTEBOOK_MAX_SIDE pixels a side."""
    import io

    from PIL import Image

    from ._io import encode_export

    labels = _preview_labels(compressed.labels)
    if compressed.k <= 256:
        return encode_export(compressed.palette, labels, compressed.mode, "png")
    # PNG palettes hold 256 colours: store larger palettes' pixels directly.
    rebuilt = compressed.palette[labels]
    buffer = io.BytesIO()
    Image.fromarray(rebuilt[:, :, 0] if compressed.mode == "L" else rebuilt, compressed.mode).save(buffer, "PNG")
    return buffer.getvalue()


def compressed_caption(compressed) -> str:
    """"K = 16 · 6.0:1 · PSNR 26.6 dB · perceptual 78.3 · 768 × 512 RGB"
    (PSNR and kmq's perceptual score only when the original is known; for
    an image with alpha both are of what is seen, as the CLI's report)."""
    from .metrics import compression_ratio, perceptual_score, psnr_seen

    height, width = compressed.shape
    channels = compressed.palette.shape[1]
    parts = [f"K = {compressed.k}", f"{1 / compression_ratio(height * width, compressed.k, channels):.1f}:1"]
    if compressed.source is not None:
        original = compressed.source.pixels
        rebuilt = compressed.reconstruct().reshape(original.shape)
        parts.append(f"PSNR {_format_psnr(psnr_seen(original, rebuilt))}")
        parts.append(f"perceptual {perceptual_score(original, rebuilt):.1f}")
    parts.append(f"{width} × {height} {compressed.mode}")
    return " · ".join(parts)


def compressed_html(compressed) -> str:
    """A Compressed for Jupyter: its rebuilt image with a caption."""
    png = compressed_png(compressed)
    preview = _preview_labels(compressed.labels)
    note = "" if preview.shape == compressed.shape else f" (shown at {preview.shape[1]} × {preview.shape[0]})"
    data_url = png_data_url(png)
    caption = html.escape(compressed_caption(compressed) + note)
    return (
        '<figure style="margin: 0; display: inline-block">'
        f'<img src="{data_url}" alt="{caption}" style="max-width: 100%">'
        f'<figcaption style="font-size: 0.9em; color: #555">kmq.Compressed: {caption}</figcaption></figure>'
    )
