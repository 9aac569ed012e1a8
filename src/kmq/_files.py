"""Shared by the batch edges (kmq.batch, kmq.palette): what folders
contribute, and the worker processes."""

from __future__ import annotations

import os
from pathlib import Path

from . import _io
from ._errors import InputError, UsageError

#: What a folder given as an input contributes: its files with these
#: extensions (Pillow reads them all), in name order; hidden files never.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".tga"}
)
def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _expand(inputs, recursive: bool):
    """Inputs -> [(path, mirrored sub-folder)], not-image count, skipped
    sub-folder count."""
    found, not_images, subfolders = [], 0, 0
    for name in inputs:
        name = os.fspath(name)
        if name == "-":
            raise UsageError("- (standard input) cannot be one of several inputs")
        if _io._is_url(name) or not Path(name).is_dir():
            found.append((name, Path()))
            continue
        root = Path(name)
        images = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if not recursive:
                subfolders += len(dirs)
                dirs[:] = []
            for file in sorted(files):
                path = Path(folder) / file
                if file.startswith(".") or not path.is_file():
                    continue
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    images.append((str(path), path.parent.relative_to(root)))
                else:
                    not_images += 1
        if not images:
            raise InputError(
                f"no images in folder {name} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}"
                + (")" if recursive else "; -r looks in sub-folders too)")
            )
        found += sorted(images, key=lambda item: (str(item[1]), item[0]))
    return found, not_images, subfolders


def _split_cores(cores: int, n_tasks: int) -> tuple[int, int]:
    """(worker processes, engine threads in each) for a run allowed
    ``cores`` cores with ``n_tasks`` files: a worker per file up to the
    cores, the cores left over shared out as threads (one image on four
    cores: one process, four threads; a folder on four: four processes of
    one thread, which scale better than threads on small images)."""
    workers = max(1, min(cores, n_tasks))
    return workers, max(1, cores // workers)


def _pool(jobs: int, threads: int = 1):
    """Worker processes started once, each limited to ``threads`` engine
    threads (kmq._engine._parallel.set_threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ._engine._parallel import set_threads

    # forkserver (spawn where there is none): no copy of the parent's
    # threads and locks; the server imports kmq once and each worker forks
    # from it.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["kmq.batch"])
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=set_threads, initargs=(threads,))
