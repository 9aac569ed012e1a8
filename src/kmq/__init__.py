"""kmq: image compression by k-means colour quantization.

The pipeline: read (``_io``) -> histogram -> k-means -> map (the engine,
``_engine/``: ``histogram``, ``kmeans``, ``remap``, each driving its
compiled kernels) -> encode/write (``_container``, ``_io``), orchestrated by
``_quantize``; ``metrics``, ``plot`` (figures and the report) and the CLI
(``_cli``) sit at the edges and are never imported by the pipeline.

>>> import kmq
>>> c = kmq.compress(kmq.sample_image_path(), 16, seed=0)   # doctest: +SKIP
>>> c.save("parrots.kmq"); kmq.decompress("parrots.kmq").shape  # doctest: +SKIP
(512, 768, 3)
"""

from . import metrics
from ._errors import DecodeError, InputError, KmqError, LimitError, NotFittedError, OutputError, UsageError
from ._io import DEFAULT_MAX_PIXELS, sample_image_path
from ._engine.kmeans import KMeans, kmeans_plusplus
from ._quantize import ColorQuantizer, Compressed, compress, decompress, load

__version__ = "0.2.0"

__all__ = [
    "compress",
    "load",
    "decompress",
    "Compressed",
    "ColorQuantizer",
    "KMeans",
    "kmeans_plusplus",
    "metrics",
    "sample_image_path",
    "DEFAULT_MAX_PIXELS",
    "KmqError",
    "UsageError",
    "InputError",
    "DecodeError",
    "OutputError",
    "LimitError",
    "NotFittedError",
]


def __getattr__(name):
    # kmq.plot imports matplotlib (slow): load it on first use, not with kmq.
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'kmq' has no attribute {name!r}")
