"""Figures of k-means colour quantization, as the tutorials draw them.

Five figures, each a function that returns a :class:`matplotlib.figure.Figure`:

* :func:`compare` -- the original beside the image rebuilt for several K,
  each titled with K, the compression ratio, PSNR and kmq's perceptual
  score; with ``dither=(0, 1)``, each K undithered beside dithered.
* :func:`scatter` -- pixels as points in RGB space with the palette's
  centroids, before and after quantization.
* :func:`segments` -- the cluster labels as a segmentation, beside the image.
* :func:`palette` -- the palette as swatches ordered by luminance, sized by
  pixel share.
* :func:`curve` -- distortion (MSE, PSNR, perceptual score) and size (bits
  per pixel, bytes) against K: the elbow to read when choosing K.

Every function takes an image (anything :func:`kmq.compress` accepts), a
:class:`kmq.Compressed` or a :class:`Sweep` (see :func:`sweep`: one
compression per K, shared by several figures). Figures are built with
:class:`matplotlib.figure.Figure`, not pyplot, so they need no display and
leave pyplot's global state alone; write them with :func:`save_figure`
(PNG or SVG) or ``fig.savefig``. In Jupyter a returned figure shows itself.

The default seed is 0, so the same call draws the same figure.

Examples
--------
>>> import kmq.plot
>>> fig = kmq.plot.compare(kmq.sample_image_path(), ks=[2, 4, 16, 64])  # doctest: +SKIP
>>> kmq.plot.save_figure(fig, "compare.png")                           # doctest: +SKIP
"""

try:
    import matplotlib  # noqa: F401
except ImportError as exc:  # the light install: figures are an extra
    raise ImportError("kmq.plot needs matplotlib, which comes with the plot extra: pip install 'kmq[plot]'") from exc

from ._draw import FIGURES, compare, curve, palette, render_figure, save_figure, scatter, segments, sweep
from ._sweep import KResult, Sweep

__all__ = [
    "compare",
    "scatter",
    "segments",
    "palette",
    "curve",
    "sweep",
    "Sweep",
    "KResult",
    "save_figure",
    "render_figure",
    "FIGURES",
]
