"""Many images at once: on every core, on a Dask cluster, or in place.

:func:`compress_many` is what ``kmq compress`` runs for several inputs, a
folder, or any batch option (``-j``, ``-r``, ``--ext``, ``--manifest``,
``--scheduler``). It works in three steps:

1. **Plan** (:func:`plan`): folders are opened up (``recursive`` mirrors
   their tree under ``output_dir``), every input gets its output name, and
   every output is checked against every input, by file identity
   (``st_dev``, ``st_ino``: hard links and symbolic links included), before
   any work: no run ever writes over one of its own inputs, except each
   input over itself when in place (``ext`` giving the input's own name,
   and ``force``).
2. **Run**: each file is one task, :func:`run_task`, a pure function of its
   input and the settings that writes its output atomically (temporary file
   in the output's folder, then ``os.replace``). Tasks run in this process
   (``jobs=1``), in worker processes started once (``jobs=N``), or on a
   dask.distributed cluster (``client``), where a task lost with its worker
   is simply run again elsewhere. The bytes written do not depend on where
   a task ran.
3. **Record**: each result is appended to the manifest as it comes (one
   flushed line per file, CSV or JSON Lines), and ``resume`` skips inputs
   the manifest records as done whose output is there, complete.

Output names
------------
``<stem>-k<K>.<ext>`` (``<stem><EXT>`` with ``ext``), in ``output_dir``
(the current folder by default), in the sub-folder mirroring the input's
place under a folder given with ``recursive``. When several inputs would get
one output name (``a.png`` and ``a.jpg``), the one whose extension is the
output format's keeps it (``a-k16.png``) and the others take their whole
file name as the stem (``a.jpg-k16.png``); if that still leaves two alike
(the same file name in two folders, without ``recursive``), the run is
refused before any work.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _io
from ._errors import EXIT_INTERNAL, InputError, KmqError, OutputError, UsageError
from ._engine._parallel import threads_limited
from ._files import IMAGE_SUFFIXES, _default_jobs, _expand, _pool, _split_cores
from ._progress import Progress
from ._quantize import DEFAULT_DITHER, DEFAULT_K, DEFAULT_MAX_ITER, DEFAULT_N_INIT, DEFAULT_SPACE, DEFAULT_TOL

__all__ = [
    "compress_many",
    "plan",
    "run_task",
    "Task",
    "Settings",
    "BatchResult",
    "MANIFEST_FIELDS",
    "IMAGE_SUFFIXES",
    "EXIT_SKIPPED",
]

#: The manifest's columns, in order (one row per input).
MANIFEST_FIELDS = ("input", "output", "k", "bytes_in", "bytes_out", "psnr", "seconds", "status", "error")
#: --skip-if-larger and the output would not be smaller (as pngquant).
EXIT_SKIPPED = 98

_EXTENSION_OF = {"kmq": "kmq", "png": "png", "gif": "gif", "webp": "webp", "jpeg": "jpg", "bmp": "bmp", "tiff": "tif"}


@dataclass(frozen=True)
class Task:
    """One file of a batch: read ``input``, write ``output``.

    ``in_place``: ``output`` is ``input`` itself (its real path), replaced
    atomically."""

    index: int
    input: str
    output: str
    in_place: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything a task needs besides its paths (picklable, sent once per
    task to a worker)."""

    k: int = DEFAULT_K
    format: str = "kmq"
    seed: object = None
    sample: float | None = None
    n_init: int = DEFAULT_N_INIT
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    init: str = "k-means++"
    space: str = DEFAULT_SPACE
    dither: float = DEFAULT_DITHER
    quality: tuple | None = None
    effort: int = _io.DEFAULT_PNG_EFFORT
    strip: bool = False
    alpha_threshold: int | None = None
    max_pixels: int | None = _io.DEFAULT_MAX_PIXELS
    max_input_bytes: int | None = _io.DEFAULT_MAX_INPUT_BYTES
    force: bool = False
    skip_if_larger: bool = False
    #: Measure each result fully (:func:`describe`: SSIM too), for ``--json``.
    details: bool = False
    #: A shared palette (K, C) uint8: map every image to it, fit nothing.
    palette: np.ndarray | None = field(default=None, compare=False)


@dataclass
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    records : list of dict
        One per planned input, in input order: the manifest's fields
        (:data:`MANIFEST_FIELDS`) and ``exit_code``. ``status`` is "ok"
        (written), "skipped" (``skip_if_larger``: nothing written, an input
        in place kept), "failed" (``error`` says why) or "done" (``resume``:
        recorded as done by an earlier run, not redone).
    not_images : int
        Files in the folders given that are not images (not compressed).
    subfolders_skipped : int
        Sub-folders not entered (no ``recursive``).
    seconds : float
    """

    records: list
    not_images: int = 0
    subfolders_skipped: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(record["status"] == status for record in self.records)

    @property
    def exit_code(self) -> int:
        """The first failed input's exit code (input order), else 98 if any
        was skipped, else 0."""
        for record in self.records:
            if record["status"] == "failed":
                return record["exit_code"]
        return EXIT_SKIPPED if self.count("skipped") else 0


# -- plan ------------------------------------------------------------------------


def _stem_and_name(name: str) -> tuple[str, str]:
    if _io._is_url(name):
        leaf = Path(name.split("?")[0].rstrip("/")).name or "download"
    else:
        leaf = Path(name).name
    return (Path(leaf).stem or leaf), leaf


def _out_name(base: str, k: int, fmt: str, ext: str | None) -> str:
    return f"{base}{ext}" if ext is not None else f"{base}-k{k}.{_EXTENSION_OF[fmt]}"


def _format_of(k: int, fmt: str | None, ext: str | None) -> str:
    if ext is not None:
        return _io.format_for_path("x" + ext, override=fmt)
    return _io.format_for_path("x", override=fmt or "kmq")


def plan(
    inputs,
    *,
    k: int = DEFAULT_K,
    output_dir=None,
    format: str | None = None,
    ext: str | None = None,
    recursive: bool = False,
    force: bool = False,
):
    """Name every output and check it against every input, before any work.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Image files, folders (their images; ``recursive``: their sub-folders'
        too) and http(s) URLs.
    output_dir : path or None
        Where outputs go (created if missing); None: the current folder.
    format : str or None
        Output format ("kmq", "png", ...); by default .kmq, or ``ext``'s.
    ext : str or None
        Output name suffix replacing ``-k<K>.<format>`` (pngquant's
        ``--ext``): ``".png"`` for ``a.png`` names ``a.png`` itself, which
        replaces the input in place (needs ``force``).

    Returns
    -------
    (tasks, format, not_images, subfolders_skipped)

    Raises
    ------
    UsageError
        Two inputs would be written to one output.
    OutputError
        An output is one of the inputs (not in place), or in place without
        ``force``.
    InputError
        A folder without images.
    """
    if ext is not None and not ext.startswith((".", "-", "_")):
        raise UsageError(f"--ext must start with '.', '-' or '_' (it follows the stem), got {ext!r}")
    fmt = _format_of(k, format, ext)
    if fmt in _io.PALETTE_FORMATS and k > 256:
        raise OutputError(f"{fmt.upper()} holds at most 256 colours, got -k {k}; use a .kmq output for K > 256")
    found, not_images, subfolders = _expand(inputs, recursive)
    base = Path(output_dir) if output_dir is not None else Path()
    if output_dir is not None and base.exists() and not base.is_dir():
        raise UsageError(f"with several inputs, -o must be a folder, got {os.fspath(output_dir)!r} (a file)")
    output_ext = "." + _EXTENSION_OF[fmt]

    def output_for(name, sub, whole_name):
        stem, leaf = _stem_and_name(name)
        return str(base / sub / _out_name(leaf if whole_name else stem, k, fmt, ext))

    outputs = [output_for(name, sub, False) for name, sub in found]
    first_choice = list(outputs)
    # Same name for several inputs: those whose extension is not the
    # output's take their whole file name as the stem.
    groups: dict = {}
    for index, output in enumerate(outputs):
        groups.setdefault(_io.file_identity(output), []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        for index in members:
            name = found[index][0]
            if Path(_stem_and_name(name)[1]).suffix.lower() not in (output_ext, ".jpeg" if output_ext == ".jpg" else output_ext):
                outputs[index] = output_for(name, found[index][1], True)
    written_by: dict = {}
    for index, output in enumerate(outputs):
        key = _io.file_identity(output)
        if key in written_by:
            raise UsageError(
                f"{found[written_by[key]][0]} and {found[index][0]} would both be written to {first_choice[index]}; "
                "compress them in separate runs"
            )
        written_by[key] = index

    input_ids = {}
    for index, (name, _) in enumerate(found):
        if not _io._is_url(name) and os.path.exists(name):
            input_ids.setdefault(_io.file_identity(name), index)
    tasks = []
    for index, ((name, _), output) in enumerate(zip(found, outputs)):
        owner = input_ids.get(_io.file_identity(output))
        in_place = False
        if owner is not None:
            if _io.file_identity(found[owner][0]) != _io.file_identity(name):
                raise OutputError(
                    f"refusing to overwrite the input {found[owner][0]}: it would be the output of {name}; "
                    "choose another output folder (-o)"
                )
            if not force:
                raise OutputError(f"{name} would be replaced in place by its output; add --force (-f) to do so")
            in_place = True
            output = os.path.realpath(name)  # a symbolic link keeps pointing at the new file
        tasks.append(Task(index, name, output, in_place))
    return tasks, fmt, not_images, subfolders


# -- one task ----------------------------------------------------------------------


def _psnr(pixels: np.ndarray, palette: np.ndarray, labels: np.ndarray) -> float:
    """PSNR of ``palette[labels]`` against ``pixels`` (H, W, C) uint8, of
    what is seen, as :func:`kmq.metrics.psnr_seen` measures it (with alpha, the
    composites on black and on white; hidden colour does not count), in
    row blocks so that memory stays a few MB whatever the image size."""
    from ._engine.remap import rebuild
    from .metrics import _squared_error_sums, seen

    height, width, channels = pixels.shape
    step = max(1, (1 << 20) // max(1, width * channels))
    total = samples = 0
    for start in range(0, height, step):
        original = seen(pixels[start : start + step])
        rebuilt = seen(rebuild(palette, labels[start : start + step]))
        total += int(_squared_error_sums(original, rebuilt).sum())
        samples += original.size
    if total == 0:
        return math.inf
    return 10.0 * math.log10(255.0 * 255.0 / (total / samples))


#: What a record says of the result beyond the manifest's fields (the
#: ``--json`` report of one image and of a batch alike); None for a failure.
DETAIL_FIELDS = (
    "format", "k_requested", "lossless", "distinct_colors", "seed", "space", "dither", "quality", "sample",
    "n_iter", "inertia", "notes", "metrics",
)


def result_notes(result, fmt: str | None = None) -> list[str]:
    """What the report notes of a :class:`kmq.Compressed`: the input's
    conversions, the quality search, losslessness, and with ``fmt`` (the
    output format) what that format does not keep (kmq._io.export_notes)."""
    notes = list(result.source.notes) if result.source is not None else []
    if result.quality_note:
        notes.append(result.quality_note)
    if result.lossless:
        notes.append(
            f"lossless: the image has {result.n_colors_in:,} distinct colour{'' if result.n_colors_in == 1 else 's'}, "
            f"no more than K={result.k_requested}; "
            f"the palette is exactly {'that colour' if result.n_colors_in == 1 else 'those colours'}"
        )
    if fmt is not None:
        notes += _io.export_notes(result.palette, result.mode, fmt)
    return notes


def measure_written(result, data: bytes, fmt: str):
    """``result.metrics()`` of the file written, ``data`` in ``fmt``: where
    the format changed the pixels (JPEG, a GIF's on/off alpha:
    kmq._io.written_pixels), the figures are those of the pixels a reader
    decodes, so that the report describes the file."""
    from .metrics import measure

    pixels = _io.written_pixels(data, fmt, result.mode)
    if pixels is None:
        return result.metrics(output_bytes=len(data))
    original = result.source.pixels
    return measure(
        original, result, input_bytes=result.source.input_bytes, output_bytes=len(data),
        reconstructed=pixels.reshape(original.shape),
    )


def describe(result, fmt: str, output_bytes: int, metrics=None) -> dict:
    """The :data:`DETAIL_FIELDS` of a :class:`kmq.Compressed` written as
    ``fmt`` in ``output_bytes`` bytes (``metrics``: its kmq.metrics.Metrics,
    measured here if not given)."""
    metrics = result.metrics(output_bytes=output_bytes) if metrics is None else metrics
    notes = result_notes(result, fmt)
    return {
        "format": fmt, "k_requested": result.k_requested, "lossless": result.lossless,
        "distinct_colors": result.n_colors_in, "seed": result.seed, "space": result.space, "dither": result.dither,
        "quality": result.quality, "sample": result.sample, "n_iter": result.n_iter, "inertia": result.inertia,
        "notes": notes, "metrics": metrics.as_dict(),
    }


def _record(task: Task, k, status, *, bytes_in=None, bytes_out=None, psnr=None, seconds=None, error="", exit_code=0, details=None):
    return {
        "input": task.input,
        "output": task.output if status in ("ok", "done") else "",
        "k": k,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "psnr": psnr,
        "seconds": None if seconds is None else round(seconds, 4),
        "status": status,
        "error": error,
        "exit_code": exit_code,
        "index": task.index,
        **(details or dict.fromkeys(DETAIL_FIELDS)),
    }


def _replace_in_place(path: str, data: bytes, before: os.stat_result) -> None:
    """Replace the file ``path`` by ``data``: a temporary file in its folder,
    flushed to disk, given the original's permissions, renamed over it.
    Killed at any point, ``path`` is the original or the new file, whole.
    Refused if the file changed since it was read (``before``)."""
    folder = os.path.dirname(path) or "."
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(before.st_mode))
            os.fsync(handle.fileno())
        now = os.stat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
            raise OutputError(f"{path} changed while it was being compressed; left as it is")
        os.replace(tmp_name, path)
        tmp_name = None
        with _suppress_os_error():
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself, on disk
            finally:
                os.close(dir_fd)
    except OSError as exc:
        if isinstance(exc, KmqError):
            raise
        raise OutputError(f"cannot replace {path}: {exc.strerror or exc}") from None
    finally:
        if tmp_name is not None:
            with _suppress_os_error():
                os.unlink(tmp_name)


def _holds(path: str, data: bytes) -> bool:
    """``path`` is a regular file holding exactly ``data``."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) != len(data):
            return False
        with open(path, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


class _suppress_os_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, OSError) and not issubclass(kind, KmqError)


def _quantize(source, settings: Settings):
    """(palette, labels, mode) of one image: fitted, or mapped to the shared
    palette."""
    from ._quantize import compress

    if settings.palette is None:
        result = compress(
            source,
            settings.k,
            seed=settings.seed,
            sample=settings.sample,
            n_init=settings.n_init,
            max_iter=settings.max_iter,
            tol=settings.tol,
            init=settings.init,
            space=settings.space,
            dither=settings.dither,
            quality=settings.quality,
        )
        return result
    from ._quantize import Compressed
    from .palette import fit_image_to

    palette, labels, mode = fit_image_to(source, settings.palette, space=settings.space, dither=settings.dither)
    return Compressed(palette=palette, labels=labels, mode=mode, k_requested=len(palette), source=source)


def run_task(task: Task, settings: Settings) -> dict:
    """Compress one file as planned; never raises for a bad file.

    A pure function of the input file and the settings: run twice (a Dask
    worker lost mid-task), it writes the same bytes, atomically.

    Returns
    -------
    dict
        The manifest record (:data:`MANIFEST_FIELDS`, ``exit_code``).
    """
    started = time.perf_counter()
    try:
        before = os.stat(task.input) if task.in_place else None
        source = _io.read_image(task.input, max_pixels=settings.max_pixels, max_input_bytes=settings.max_input_bytes)
        result = _quantize(source, settings)
        data = result.to_bytes(
            settings.format, alpha_threshold=settings.alpha_threshold, strip=settings.strip, effort=settings.effort
        )
        if settings.details:
            details = describe(result, settings.format, len(data), measure_written(result, data, settings.format))
            psnr = details["metrics"]["psnr"]
        else:
            details = None
            written = _io.written_pixels(data, settings.format, result.mode)
            if written is None:
                psnr = _psnr(source.pixels, result.palette, result.labels)
            else:  # a JPEG's or a GIF's pixels, as read back
                from .metrics import psnr_seen

                psnr = psnr_seen(source.pixels, written.reshape(source.pixels.shape))
        psnr = math.inf if psnr is None else psnr  # JSON's null: identical
        bytes_in = source.input_bytes
        if settings.skip_if_larger and bytes_in is not None:
            # In place, an output of the same size is no gain: keep the original.
            if len(data) > bytes_in or (task.in_place and len(data) >= bytes_in):
                return _record(task, result.k, "skipped", bytes_in=bytes_in, bytes_out=len(data), psnr=psnr,
                               seconds=time.perf_counter() - started, exit_code=EXIT_SKIPPED, details=details)
        if task.in_place:
            _replace_in_place(task.output, data, before)
        elif not settings.force and _holds(task.output, data):
            # This very output, written by an earlier run of this task (one
            # whose result a lost Dask worker took with it): nothing to do.
            pass
        else:
            folder = os.path.dirname(task.output)
            if folder:
                os.makedirs(folder, exist_ok=True)
            _io.write_atomic(task.output, data, force=settings.force, inputs=(source.path,))
        return _record(task, result.k, "ok", bytes_in=bytes_in, bytes_out=len(data), psnr=psnr,
                       seconds=time.perf_counter() - started, details=details)
    except KmqError as exc:
        message = str(exc) if task.input in str(exc) else f"{task.input}: {exc}"
        return _record(task, settings.k, "failed", error=message, exit_code=exc.exit_code,
                       seconds=time.perf_counter() - started)
    except MemoryError:
        return _record(task, settings.k, "failed", error=f"{task.input}: out of memory", exit_code=EXIT_INTERNAL)
    except Exception as exc:  # noqa: BLE001 - a bug: reported for this file, the others go on
        return _record(task, settings.k, "failed", error=f"{task.input}: internal error: {type(exc).__name__}: {exc}",
                       exit_code=EXIT_INTERNAL)


# -- manifest ----------------------------------------------------------------------


class _Manifest:
    """Append-only: one row per finished file, flushed at once, so that a run
    killed at any point leaves every finished file recorded."""

    def __init__(self, path):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".jsonl"):
            raise UsageError(f"--manifest must end in .csv or .jsonl, got {os.fspath(path)!r}")
        self.csv = suffix == ".csv"
        self.handle = None

    def done(self) -> dict:
        """input (absolute) -> the last row recorded for it."""
        rows = {}
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                if self.csv:
                    reader = csv.DictReader(handle)
                    lines = list(reader)
                else:
                    lines = []
                    for line in handle:
                        try:
                            lines.append(json.loads(line))
                        except ValueError:  # a line cut short by a kill
                            continue
        except FileNotFoundError:
            return rows
        except OSError as exc:
            raise InputError(f"cannot read the manifest {self.path}: {exc.strerror or exc}") from None
        for row in lines:
            if isinstance(row, dict) and row.get("input"):
                rows[os.path.abspath(row["input"])] = row
        return rows

    def open(self):
        try:
            if self.path.parent != Path():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.handle = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from None
        if self.csv:
            self.writer = csv.DictWriter(self.handle, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
            if new:
                self.writer.writeheader()
                self.handle.flush()

    def write(self, record: dict):
        row = {name: record[name] for name in MANIFEST_FIELDS}
        if row["psnr"] is not None and math.isinf(row["psnr"]):
            row["psnr"] = "inf"
        if self.csv:
            self.writer.writerow({key: "" if value is None else value for key, value in row.items()})
        else:
            self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()

    def close(self):
        if self.handle is not None:
            self.handle.close()


def _is_done(task: Task, row: dict | None) -> bool:
    """Recorded as done by an earlier run, and its output is there, complete."""
    if row is None or row.get("status") not in ("ok", "skipped"):
        return False
    if row["status"] == "skipped":
        return True
    if os.path.abspath(row.get("output") or "") != os.path.abspath(task.output):
        return False
    try:
        return os.path.getsize(task.output) == int(row.get("bytes_out") or -1)
    except (OSError, ValueError):
        return False


# -- running -------------------------------------------------------------------------


def _run_local(tasks, settings, cores, finished):
    workers, threads = _split_cores(cores, len(tasks))
    if workers == 1:
        with threads_limited(threads):
            for task in tasks:
                finished(run_task(task, settings))
        return
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    executor = _pool(workers, threads)
    try:
        futures = {executor.submit(run_task, task, settings): task for task in tasks}
        for future in as_completed(futures):
            try:
                record = future.result()
            except BrokenProcessPool:
                task = futures[future]
                record = _record(task, settings.k, "failed", exit_code=EXIT_INTERNAL,
                                 error=f"{task.input}: a worker process died (out of memory?); nothing written")
            finished(record)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


#: Times a task the cluster lost is submitted again (the scheduler itself
#: already reruns a task whose worker died while running it).
_DASK_ATTEMPTS = 3


def _run_task_one_thread(task, settings):
    """run_task on one engine thread: a Dask worker runs as many tasks at
    once as it has threads, so each takes one core (the bytes do not
    depend on it). Set for the worker process, not undone: its task
    threads would race on restoring it."""
    from ._engine._parallel import set_threads

    set_threads(1)
    return run_task(task, settings)


def _run_dask(tasks, settings, client, finished):
    from distributed import as_completed

    # One key per task and settings: a task lost with its worker is rerun
    # on another (the scheduler retries it), and its output is the same.
    # Workers run in other folders (other machines sharing the files): they
    # get absolute paths, and the records get the names as given back.
    token = f"{os.getpid()}-{time.time_ns()}"
    futures = {}
    for task in tasks:
        absolute = Task(
            task.index, task.input if _io._is_url(task.input) else os.path.abspath(task.input),
            os.path.abspath(task.output), task.in_place,
        )
        future = client.submit(_run_task_one_thread, absolute, settings, key=f"kmq-compress-{token}-{task.index}-0", pure=False)
        futures[future] = (task, absolute, 0)
    pending = as_completed(list(futures))
    try:
        for future in pending:
            task, absolute, attempt = futures.pop(future)
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - run_task never raises: the cluster lost it
                # E.g. the result was held by a worker that died before it
                # was fetched. The task is pure and writes atomically: run it again.
                if attempt < _DASK_ATTEMPTS:
                    again = client.submit(
                        _run_task_one_thread, absolute, settings, key=f"kmq-compress-{token}-{task.index}-{attempt + 1}", pure=False
                    )
                    futures[again] = (task, absolute, attempt + 1)
                    pending.add(again)
                    continue
                record = _record(task, settings.k, "failed", exit_code=EXIT_INTERNAL,
                                 error=f"{task.input}: the cluster could not run it: {type(exc).__name__}: {exc}")
            record["input"] = task.input
            if record["output"]:
                record["output"] = task.output
            record["error"] = record["error"].replace(absolute.input, task.input)
            finished(record)
    except BaseException:
        client.cancel(list(futures))
        raise


def compress_many(
    inputs,
    *,
    k: int | None = DEFAULT_K,
    output_dir=None,
    format: str | None = None,
    ext: str | None = None,
    recursive: bool = False,
    force: bool = False,
    skip_if_larger: bool = False,
    seed=None,
    sample: float | None = None,
    n_init: int = DEFAULT_N_INIT,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    init: str = "k-means++",
    space: str = DEFAULT_SPACE,
    dither: float = DEFAULT_DITHER,
    quality=None,
    effort: int = _io.DEFAULT_PNG_EFFORT,
    strip: bool = False,
    alpha_threshold: int | None = None,
    max_pixels: int | None = _io.DEFAULT_MAX_PIXELS,
    max_input_bytes: int | None = _io.DEFAULT_MAX_INPUT_BYTES,
    palette=None,
    jobs: int | None = None,
    client=None,
    manifest=None,
    resume: bool = False,
    progress: bool | None = None,
    on_result=None,
    details: bool = False,
) -> BatchResult:
    """Compress many images, each to its own file.

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Image files, folders and http(s) URLs (see :func:`plan`).
    k, seed, sample, n_init, max_iter, tol, init, space, dither, quality, max_pixels
        As for :func:`kmq.compress`; with a ``seed``, each file's bytes are
        those :func:`kmq.compress` gives for it alone, whatever ``jobs`` or
        ``client``.
    output_dir, format, ext, recursive, force
        See :func:`plan`.
    effort, strip, alpha_threshold
        As for :meth:`kmq.Compressed.to_bytes`.
    skip_if_larger : bool
        Write nothing for a file whose output would be larger than it (in
        place: not smaller), status "skipped".
    max_input_bytes : int or None
        Cap on bytes read from a URL, pipe or device.
    palette : ndarray (K, C) uint8 (C = 3 or 4), path of a .gpl file, or None
        Map every image to this palette instead of fitting one per image
        (see :mod:`kmq.palette`); ``k`` is then the palette's size.
    jobs : int or None
        Cores to use (None: all): a worker process per core, started once
        for the batch (with fewer files than cores, fewer workers, each
        with more threads); 1: in this process, on one thread. The bytes
        do not depend on it. Ignored with ``client``.
    client : distributed.Client or None
        Run the tasks on this Dask cluster instead.
    manifest : path or None
        ``.csv`` or ``.jsonl`` file; one row per finished file is appended
        (:data:`MANIFEST_FIELDS`) and flushed as it finishes.
    resume : bool
        Skip inputs the manifest records as done (status ok or skipped, and
        for ok the output there with the recorded size); status "done".
    progress : bool or None
        A tqdm progress bar on stderr (kmq._progress); None: only when
        stderr is a terminal.
    details : bool
        Add :data:`DETAIL_FIELDS` to each record (full metrics, SSIM
        included: slower), as ``kmq compress --json`` reports them.
    on_result : callable or None
        Called with each record as soon as it and every input before it are
        finished (so in input order), in this process.

    Returns
    -------
    BatchResult
    """
    started = time.perf_counter()
    from ._quantize import _check_k

    if palette is not None:
        from .palette import read_palette

        palette = read_palette(palette) if not isinstance(palette, np.ndarray) else np.asarray(palette, np.uint8)
        if palette.ndim != 2 or palette.shape[1] not in (3, 4) or not 1 <= len(palette) <= 65536:
            raise UsageError(f"a palette must have shape (K, 3) or (K, 4), K in 1..65536, got {palette.shape}")
        k = len(palette)  # names say the palette's K
    k = _check_k(DEFAULT_K if k is None else k)
    tasks, fmt, not_images, subfolders = plan(
        inputs, k=k, output_dir=output_dir, format=format, ext=ext, recursive=recursive, force=force
    )
    settings = Settings(
        k=k, format=fmt, seed=seed, sample=sample, n_init=n_init, max_iter=max_iter, tol=tol, init=init,
        space=space, dither=dither, quality=quality, effort=effort, strip=strip, alpha_threshold=alpha_threshold,
        max_pixels=max_pixels, max_input_bytes=max_input_bytes, force=force, skip_if_larger=skip_if_larger,
        palette=palette, details=details,
    )
    book = _Manifest(manifest) if manifest is not None else None
    if book is not None:
        manifest_id = _io.file_identity(book.path)
        for task in tasks:
            if manifest_id in (_io.file_identity(task.input), _io.file_identity(task.output)):
                raise UsageError(f"the manifest {book.path} cannot be an input or an output of the run")
    if resume and book is None:
        raise UsageError("--resume needs --manifest FILE (the record of the earlier run)")
    recorded = book.done() if resume else {}
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)

    records: list = [None] * len(tasks)
    to_run = []
    for task in tasks:
        row = recorded.get(os.path.abspath(task.input))
        if resume and _is_done(task, row):
            records[task.index] = _record(task, k, "done", bytes_in=_int_or_none(row.get("bytes_in")),
                                          bytes_out=_int_or_none(row.get("bytes_out")))
        else:
            to_run.append(task)

    next_out = 0

    def emit_ready():
        nonlocal next_out
        while next_out < len(records) and records[next_out] is not None:
            if on_result is not None:
                on_result(records[next_out])
            next_out += 1

    # A batch shows its bar at once; one image after a second, as a single run.
    bar = Progress(progress and bool(to_run), total=len(to_run), unit="image", delay=0 if len(to_run) > 1 else None)

    def finished(record):
        records[record["index"]] = record
        if book is not None:
            book.write(record)
        bar.update(1)
        emit_ready()

    if book is not None:
        book.open()
    try:
        emit_ready()
        if to_run:
            if client is not None:
                _run_dask(to_run, settings, client, finished)
            else:
                jobs = _default_jobs() if jobs is None else int(jobs)
                if jobs < 1:
                    raise UsageError(f"jobs must be >= 1, got {jobs}")
                _run_local(to_run, settings, jobs, finished)
    finally:
        bar.close()
        if book is not None:
            book.close()
    return BatchResult(records, not_images, subfolders, time.perf_counter() - started)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
