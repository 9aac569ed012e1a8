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

from typing import TYPE_CHECKING

from ._errors import DecodeError, InputError, KmqError, LimitError, NotFittedError, OutputError, UsageError

if TYPE_CHECKING:
    from . import metrics
    from ._engine.kmeans import KMeans, kmeans_plusplus
    from ._io import DEFAULT_MAX_PIXELS, sample_image_path
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


#: Where each public name lives. They are imported on first use, not with
#: kmq: the ``kmq`` command must set up the process (_cli) before numpy is
#: imported, and kmq.plot imports matplotlib (slow).
_LAZY = {
    "compress": "._quantize",
    "load": "._quantize",
    "decompress": "._quantize",
    "Compressed": "._quantize",
    "ColorQuantizer": "._quantize",
    "KMeans": "._engine.kmeans",
    "kmeans_plusplus": "._engine.kmeans",
    "sample_image_path": "._io",
    "DEFAULT_MAX_PIXELS": "._io",
}


def __getattr__(name):
    import importlib

    if name in ("metrics", "plot"):
        return importlib.import_module("." + name, __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kmq' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"plot"})
