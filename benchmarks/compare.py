"""kmq's compiled core against scikit-learn, Pillow and pngquant, in one run.

Usage::

    python benchmarks/compare.py [KODAK] [--photos PHOTOS] [--k 16 64 256]
        [--seeds 3] [--repeats 7] [--wheel WHEEL] [--out docs/benchmarks.md]
    python benchmarks/compare.py --quick          # smoke test, a few minutes

KODAK defaults to ../shared/bench/kodak, PHOTOS to ../shared/bench/photos
(resized to 768 px wide with Lanczos into a temporary folder). The results
replace the section between the ``kmq-engine-benchmarks`` markers of
``--out``; ``--quick`` (2 images per folder, K = 64, 1 seed, 1 repeat, one
large image) writes to /tmp/kmq-bench/quick.md unless ``--out`` is given,
never to the docs. A peer that is missing (scikit-learn, pngquant, the
photos folder) is skipped and named in the output.

What is measured:

1. API (in memory), K in --k, on Kodak and on the resized photos: kmq's
   ``ColorQuantizer(space="rgb")`` against scikit-learn ``KMeans(n_init=1)`` on all
   pixels (and on 10 %), Pillow's median cut and octree. One worker process
   per (folder, method, K), run by this interpreter (the tree's kmq, which
   must be importable: ``pip install -e .``), after a warm-up call. Median of
   the per-image speed ratios and of the per-image SSE ratios.
2. End to end as users run it, from a wheel of this tree installed in a
   fresh virtual environment: ``kmq compress IN -k 64 -o OUT.png -f``
   (default options: the report is printed, so metrics are computed)
   against ``pngquant 64`` (dithered, its default) and ``pngquant --nofs
   64``, plus ``kmq ... -q``; runs interleaved per image, --repeats each;
   Kodak, the resized photos and a 16 x 16 image. Wall time of the process
   and its peak RSS (GNU time ``%M``, or a fork-and-wait4 launcher).
3. First run after installing: the wheel (``pip wheel --no-deps``, or
   --wheel) installed with ``pip install WHEEL`` in a new venv; the very
   first ``kmq compress`` there, then later runs; du of site-packages and
   of the venv for the core and after ``pip install 'WHEEL[plot]'``.
4. Large images, K = 256: the 12 MP Kodak mosaic and a photograph
   upscaled to 14 MP (benchmarks/make_large.py), ``kmq compress`` with
   default options and with ``-q`` against ``pngquant --nofs 256``.
5. Quality: ``kmq compress -q --seed 0`` against ``pngquant --nofs`` at each
   K on every Kodak image (MSE, bytes), and every image given to one
   process of each tool.

Full run: roughly 25-35 minutes on 2 cores (10 of them building the wheel
and the API's scikit-learn fits).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "bench" / "kodak"
DEFAULT_PHOTOS = ROOT.parent / "shared" / "bench" / "photos"
LARGE_PHOTO = "Hokkaido.jpg"  # the median of the photos in distinct colours (484,000 at full size)
BEGIN = "<!-- kmq-engine-benchmarks:begin -->"
END = "<!-- kmq-engine-benchmarks:end -->"
API_METHODS = ["kmq", "sklearn-full", "sklearn-10pct", "pillow-mediancut", "pillow-octree"]


# -- the worker: one (method, K) over all images, in its own process --------------


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _quantize(method: str, pixels: np.ndarray, k: int, seed: int):
    """Palette (K', 3) uint8 and labels (H, W), plus sklearn's inertia_."""
    if method == "kmq":
        from kmq import ColorQuantizer

        # k-means in RGB, as scikit-learn's (kmq's default fits in Oklab and
        # minimises another error; benchmarks/perceptual.py measures that).
        q = ColorQuantizer(k, seed=seed, space="rgb")
        labels = q.fit_transform(pixels)
        return q.palette_, labels, None
    if method.startswith("sklearn"):
        from sklearn.cluster import KMeans

        X = pixels.reshape(-1, 3).astype(np.float64)
        if method == "sklearn-full":
            km = KMeans(k, n_init=1, random_state=seed).fit(X)
            labels = km.labels_
        else:
            rng = np.random.default_rng(seed)
            sample = X[rng.choice(len(X), size=max(k, len(X) // 10), replace=False)]
            km = KMeans(k, n_init=1, random_state=seed).fit(sample)
            labels = km.predict(X)
        return km.cluster_centers_, labels.reshape(pixels.shape[:2]), float(km.inertia_)
    from PIL import Image

    pil_method = {"pillow-mediancut": Image.Quantize.MEDIANCUT, "pillow-octree": Image.Quantize.FASTOCTREE}[method]
    quantized = Image.fromarray(pixels).quantize(k, method=pil_method, dither=Image.Dither.NONE)
    palette = np.array(quantized.getpalette()[: 3 * k], dtype=np.uint8).reshape(-1, 3)
    return palette, np.asarray(quantized), None


def _nearest_sse(pixels: np.ndarray, palette_float: np.ndarray) -> tuple[float, np.ndarray]:
    """SSE of the uint8-rounded palette, every pixel mapped to its nearest
    entry (exact integer search)."""
    from kmq._engine.histogram import color_histogram, pack_colors
    from kmq._engine.remap import nearest_palette_index

    palette = np.clip(np.rint(palette_float), 0, 255).astype(np.uint8)
    keys = pack_colors(pixels.reshape(-1, 3))
    histogram = color_histogram(keys, 3)
    _, dist2 = nearest_palette_index(histogram.colors, palette, return_dist2=True)
    return float(np.dot(histogram.counts, dist2)), palette


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(method: str, k: int, files: list[str], seeds: int) -> None:
    from kmq._io import encode_export

    warm = _load(Path(files[0]))[:64, :64].copy()
    _quantize(method, warm, min(k, 16), 0)
    baseline = _rss_mb()
    for name in files:
        pixels = _load(Path(name))
        for seed in range(seeds if method != "pillow-mediancut" and method != "pillow-octree" else 1):
            start = time.perf_counter()
            palette, labels, sk_inertia = _quantize(method, pixels, k, seed)
            seconds = time.perf_counter() - start
            palette_u8 = np.clip(np.rint(palette), 0, 255).astype(np.uint8)
            diff = pixels.astype(np.int64) - palette_u8[labels].astype(np.int64)
            sse = float((diff**2).sum())
            record = {"image": Path(name).stem, "seed": seed, "seconds": seconds, "sse": sse, "sklearn_inertia": sk_inertia, "pixels": pixels.shape[0] * pixels.shape[1]}
            if method.startswith("sklearn"):
                record["sse_nearest_rounded"], _ = _nearest_sse(pixels, palette)
            if seed == 0:
                record["distinct"] = int(len(np.unique(_keys(pixels))))
                record["png_bytes"] = len(encode_export(palette_u8, labels.astype(np.uint8), "RGB", "png"))
            print(json.dumps(record), flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"peak_rss_mb": usage.ru_maxrss / 1024, "baseline_rss_mb": baseline}), flush=True)


# -- processes ----------------------------------------------------------------------

GNU_TIME = shutil.which("time") if Path("/usr/bin/time").exists() else None
# Without GNU time: a small launcher forks, execs the command and reports the
# child's ru_maxrss from wait4 (the launcher's own ~10 MB is the floor).
LAUNCHER = (
    "import os,sys,time\nt=time.perf_counter()\npid=os.fork()\nif pid==0:\n os.execvp(sys.argv[1],sys.argv[1:])\n"
    "_,st,ru=os.wait4(pid,0)\nsys.stderr.write(f'KMQBENCH {ru.ru_maxrss} {time.perf_counter()-t}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(st))"
)


def _clean_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def run_process(command: list[str], capture: bool = False) -> dict:
    """Wall seconds, peak RSS (MB) and (if ``capture``) stdout of one process."""
    prefix = ["/usr/bin/time", "-f", "KMQBENCH %M"] if GNU_TIME else [sys.executable, "-c", LAUNCHER]
    start = time.perf_counter()
    process = subprocess.run(prefix + command, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE, env=_clean_env(), text=True)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {process.stderr[-500:]}")
    peak = float("nan")
    for line in process.stderr.splitlines():
        if line.startswith("KMQBENCH "):
            fields = line.split()
            peak = int(fields[1]) / 1024
            if len(fields) > 2:
                seconds = float(fields[2])
    return {"seconds": seconds, "peak_rss_mb": peak, "stdout": process.stdout if capture else None}


def _mse_of_file(original: np.ndarray, path: Path) -> float:
    return float(((original.astype(np.int64) - _load(path).astype(np.int64)) ** 2).mean())


def psnr(mse: float) -> float:
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run_worker(method: str, k: int, files: list[Path], seeds: int) -> dict:
    command = [sys.executable, __file__, "--worker", method, str(k), "--seeds", str(seeds), *map(str, files)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {"runs": [r for r in records if "image" in r], "memory": records[-1]}


# -- the installed kmq ----------------------------------------------------------------


def _disk_bytes(path: Path) -> int:
    seen, total = set(), 0
    for folder, _, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _sizes(venv: Path) -> dict:
    site = next((venv / "lib").glob("python*/site-packages"))
    parts = {}
    for entry in site.iterdir():
        if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
            continue
        name = entry.name.split(".")[0]
        parts[name] = parts.get(name, 0) + (_disk_bytes(entry) if entry.is_dir() else entry.stat().st_blocks * 512)
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:6]
    return {"site_packages_mb": _disk_bytes(site) / 1e6, "venv_mb": _disk_bytes(venv) / 1e6, "largest": [(n, b / 1e6) for n, b in largest]}


def build_wheel(workdir: Path, given: Path | None) -> tuple[Path, float]:
    if given:
        return given.resolve(), float("nan")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(workdir / "wheel"), str(ROOT)], check=True)
    return next((workdir / "wheel").glob("kmq-*.whl")), time.perf_counter() - start


def install(workdir: Path, wheel: Path, sample: Path, later: int) -> dict:
    """Fresh venv with the wheel; the very first kmq compress, then later ones."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True)
    command = [str(venv / "bin" / "kmq"), "compress", str(sample), "-k", "64", "-o", str(workdir / "first.png"), "-f"]
    first = run_process(command)["seconds"]
    later_runs = [run_process(command)["seconds"] for _ in range(later)]
    imports = [run_process([str(venv / "bin" / "python"), "-c", "import kmq"])["seconds"] for _ in range(3)]
    versions = subprocess.run([str(venv / "bin" / "python"), "-c", "import numpy, PIL, kmq; print(numpy.__version__, PIL.__version__, kmq.__version__)"],
                              capture_output=True, text=True).stdout.split()
    with zipfile.ZipFile(wheel) as zf:
        compiled = sorted(n for n in zf.namelist() if n.endswith(".so"))
    return {"venv": str(venv), "first": first, "later": statistics.median(later_runs), "n_later": later, "import": statistics.median(imports),
            "versions": dict(zip(["numpy", "PIL", "kmq"], versions)), "wheel": wheel.name, "wheel_mb": wheel.stat().st_size / 1e6,
            "compiled": compiled, "size_core": _sizes(venv)}


def add_plot_extra(info: dict, wheel: Path) -> None:
    venv = Path(info["venv"])
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"kmq[plot] @ {wheel.as_uri()}"], check=True)
    info["size_plot"] = _sizes(venv)


# -- end to end ------------------------------------------------------------------------


def _tools(kmq: str, pngquant: str | None, k: int, src: Path, out: Path) -> dict:
    tools = {"kmq": [kmq, "compress", str(src), "-k", str(k), "-o", str(out / "kmq.png"), "-f"],
             "kmq -q": [kmq, "compress", str(src), "-k", str(k), "-o", str(out / "kmq-q.png"), "-f", "-q"]}
    if pngquant:
        tools[f"pngquant {k}"] = [pngquant, "-f", "-o", str(out / "pq.png"), str(k), str(src)]
        tools[f"pngquant --nofs {k}"] = [pngquant, "--nofs", "-f", "-o", str(out / "pq-nofs.png"), str(k), str(src)]
    return tools


def paired(files: list[Path], k: int, kmq: str, pngquant: str | None, workdir: Path, repeats: int) -> dict:
    """Per image: each tool run ``repeats`` times, interleaved; medians."""
    per_image = []
    warm = _tools(kmq, pngquant, k, files[0], workdir)
    for command in warm.values():
        run_process(command)  # untimed: binaries and libraries into the page cache
    for path in files:
        original = _load(path)
        tools = _tools(kmq, pngquant, k, path, workdir)
        runs = {tool: [] for tool in tools}
        own = []
        for _ in range(repeats):
            for tool, command in tools.items():
                r = run_process(command, capture=(tool == "kmq"))
                runs[tool].append(r)
                if tool == "kmq":
                    m = re.search(r"^\s*time\s+([\d.]+) s", r["stdout"] or "", re.M)
                    own.append(float(m.group(1)) if m else float("nan"))
        row = {"image": path.stem, "distinct": int(len(np.unique(_keys(original)))), "kmq_time_line": statistics.median(own)}
        for tool, command in tools.items():
            out = Path(command[command.index("-o") + 1])
            row[tool] = {"seconds": statistics.median(r["seconds"] for r in runs[tool]), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[tool]),
                         "mse": _mse_of_file(original, out), "bytes": out.stat().st_size,
                         "ratio": statistics.median(a["seconds"] / b["seconds"] for a, b in zip(runs["kmq"], runs[tool]))}
        per_image.append(row)
    return {"k": k, "repeats": repeats, "images": per_image, "size": f"{original.shape[1]} x {original.shape[0]}"}


def _keys(pixels: np.ndarray) -> np.ndarray:
    p = pixels.reshape(-1, 3).astype(np.uint32)
    return (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]


def quality(files: list[Path], k: int, kmq: str, pngquant: str | None, workdir: Path) -> list:
    rows = []
    for path in files:
        original = _load(path)
        commands = {"kmq": [kmq, "compress", str(path), "-k", str(k), "-o", str(workdir / "q-kmq.png"), "-q", "-f", "--seed", "0"]}
        if pngquant:
            commands["pngquant"] = [pngquant, "--nofs", "-f", "-o", str(workdir / "q-pq.png"), str(k), str(path)]
        row = {"image": path.stem}
        for tool, command in commands.items():
            out = Path(command[command.index("-o") + 1])
            r = run_process(command)
            row[tool] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"], "mse": _mse_of_file(original, out), "bytes": out.stat().st_size}
        rows.append(row)
    return rows


def one_process(files: list[Path], k: int, kmq: str, pngquant: str | None, workdir: Path) -> dict:
    """Every image in one process (pngquant writes beside its inputs: copies)."""
    inputs, out = workdir / "batch-in", workdir / "batch-kmq"
    for folder in (inputs, out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    copies = [Path(shutil.copy(f, inputs / f.name)) for f in files]
    r = run_process([kmq, "compress", *map(str, copies), "-k", str(k), "-o", str(out), "--format", "png", "-q", "-f", "--seed", "0"])
    results = {"kmq": {"seconds": r["seconds"], "outputs": len(list(out.glob("*.png")))}}
    if pngquant:
        r = run_process([pngquant, "--nofs", "-f", "--ext", "-pq.png", str(k), *map(str, copies)])
        results["pngquant"] = {"seconds": r["seconds"], "outputs": len(list(inputs.glob("*-pq.png")))}
    return results


def prepare_photos(folder: Path, workdir: Path, limit: int | None) -> list[Path]:
    """The photos resized to 768 px wide (Lanczos), as PNG files."""
    from PIL import Image

    target = workdir / "photos768"
    target.mkdir(exist_ok=True)
    files = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]:
        with Image.open(path) as image:
            image = image.convert("RGB")
            small = image.resize((768, round(image.height * 768 / image.width)), Image.Resampling.LANCZOS)
        small.save(target / (path.stem + ".png"), compress_level=1)
        files.append(target / (path.stem + ".png"))
    return files


def kmq_install(kmq_command: str | None = None) -> str:
    """How the kmq that a benchmark times is installed: "installed" (a
    wheel, as users have it) or "editable (SOURCE)". An editable install
    of meson-python checks the build for changes when kmq is imported:
    0.05-0.06 s a process on this machine (docs/benchmarks.md, "--quality
    65-80 end to end"), which a one-command timing must not count.
    ``kmq_command``: the ``kmq`` executable whose venv to ask (default:
    this Python's)."""
    python = sys.executable
    if kmq_command and shutil.which(kmq_command):
        beside = Path(shutil.which(kmq_command)).with_name("python")
        if beside.exists():
            python = str(beside)
    found = subprocess.run([python, "-c", "import kmq; print(kmq.__file__)"], capture_output=True, text=True).stdout.strip()
    if not found:
        return "not importable"
    path = Path(found).resolve()
    return f"editable ({path.parent})" if ROOT / "src" in path.parents else "installed"


def warn_if_editable(install: str) -> None:
    """One line on stderr when the timed kmq is an editable install."""
    if install.startswith("editable"):
        print(f"warning: the timed kmq is {install}, not a wheel: its start-up includes meson-python's rebuild check "
              "(about 0.05 s a process). Time a wheel: python3 -m venv V && V/bin/pip install '.[bench]'", file=sys.stderr)


def machine() -> dict:
    model = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    with open("/proc/meminfo") as meminfo:
        ram = int(meminfo.readline().split()[1]) / 1024**2
    versions = {"python": platform.python_version()}
    for module in ("numpy", "sklearn", "PIL", "Cython", "mesonpy"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            versions[module] = "not installed"
    pngquant = shutil.which("pngquant")
    versions["pngquant"] = subprocess.run([pngquant, "--version"], capture_output=True, text=True).stdout.split()[0] if pngquant else "not installed"
    try:
        versions["cc"] = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        versions["cc"] = "?"
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    return {"model": model, "cores": os.cpu_count(), "ram_gib": ram, "versions": versions, "platform": platform.platform(), "commit": commit}


# -- the report -------------------------------------------------------------------------


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _per_image(runs, field):
    by_image = {}
    for r in runs:
        by_image.setdefault(r["image"], []).append(r[field])
    return {image: statistics.median(v) for image, v in by_image.items()}


def _mark(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def report(R: dict) -> str:
    info, v, meta = R["machine"], R["machine"]["versions"], R["meta"]
    L = [BEGIN, "## Engine benchmarks: kmq's compiled core against scikit-learn, Pillow and pngquant", ""]
    L += [f"One run of `{meta['command']}` (commit {info['commit']}), {meta['started']} to {meta['finished']}; load average "
          f"{meta['load_start']} at the start, {meta['load_end']} at the end.", "",
          f"Machine: {info['model']}, {info['cores']} cores, {info['ram_gib']:.0f} GiB RAM ({info['platform']}). Harness: Python {v['python']}, "
          f"numpy {v['numpy']}, scikit-learn {v['sklearn']}, Pillow {v['PIL']}, Cython {v['Cython']}, meson-python {v['mesonpy']}, {v['cc']}; "
          f"pngquant {v['pngquant']}. Peak memory from {'GNU time `%M`' if meta['gnu_time'] else 'wait4 in a fork launcher'}.", ""]
    inst = R.get("install")
    if inst:
        iv = inst["versions"]
        L += [f"End-to-end runs use `{inst['wheel']}` installed with `pip install` in a fresh venv (numpy {iv.get('numpy')}, Pillow {iv.get('PIL')}).", ""]
    if meta["skipped"]:
        L += ["Skipped: " + "; ".join(meta["skipped"]) + ".", ""]
    checks = []
    L += ["### 1. Through the API, image in memory (fit the palette, map every pixel)", "",
          "Median over images of per-image medians over seeds " f"0..{meta['seeds'] - 1}. SSE: pixel-space sum of squared errors of the uint8 palette image; "
          "ratios against scikit-learn `KMeans(n_init=1)` on all pixels (its `inertia_`, and its centres rounded to uint8 and mapped to the nearest entry). "
          "Peak RSS of the worker process (after warm-up in brackets).", ""]
    for name, label in (("kodak", "Kodak"), ("photos", "photos at 768 px wide")):
        sets = {k: {m: R["api"].get(f"{name}|{m}|{k}") for m in API_METHODS} for k in meta["k"]}
        if not any(r for s in sets.values() for r in s.values()):
            continue
        L += [f"#### {label} ({meta['n_files'][name]} images)", "",
              "| K | method | time (ms) | faster than sklearn | peak RSS MB | MSE | SSE / sklearn inertia_ | SSE / sklearn rounded | distinct colours (median) |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        per = []
        for k, methods in sets.items():
            ref = methods.get("sklearn-full")
            rt = _median(_per_image(ref["runs"], "seconds").values()) if ref else None
            ri = _median(_per_image(ref["runs"], "sklearn_inertia").values()) if ref else None
            rr = _median(_per_image(ref["runs"], "sse_nearest_rounded").values()) if ref else None
            for m, res in methods.items():
                if not res:
                    continue
                t = _median(_per_image(res["runs"], "seconds").values())
                sse = _median(_per_image(res["runs"], "sse").values())
                mse = _median(r["sse"] / r["pixels"] / 3 for r in res["runs"])
                dist = _median(r.get("distinct") for r in res["runs"])
                L.append(f"| {k} | {m} | {t * 1000:.1f} | {f'{rt / t:.1f}x' if rt else '-'} | {res['memory']['peak_rss_mb']:.0f} ({res['memory']['baseline_rss_mb']:.0f}) | "
                         f"{mse:.2f} | {f'{sse / ri:.4f}' if ri else '-'} | {f'{sse / rr:.4f}' if rr else '-'} | {dist:,.0f} |")
            if ref and methods.get("kmq"):
                kt, st = _per_image(methods["kmq"]["runs"], "seconds"), _per_image(ref["runs"], "seconds")
                ks, si = _per_image(methods["kmq"]["runs"], "sse"), _per_image(ref["runs"], "sklearn_inertia")
                sp = [st[i] / kt[i] for i in kt]
                ra = [ks[i] / si[i] for i in ks]
                per.append((k, _median(sp), min(sp), _median(ra), max(ra)))
        L += ["", "Per-image ratios, kmq against sklearn on all pixels:", "", "| K | speed-up: median (min) | SSE / sklearn inertia_: median (max) |", "|---:|---:|---:|"]
        for k, med, low, rmed, rmax in per:
            L.append(f"| {k} | {med:.1f}x ({low:.1f}x) | {rmed:.4f} ({rmax:.4f}) |")
            if k == 64:
                target = 35 if name == "kodak" else 25
                checks.append(f"K = 64, API, {label}: kmq {med:.1f}x faster than `KMeans(n_init=1)` (median per-image ratio; target {target}x: {_mark(med >= target)}); "
                              f"SSE {100 * (rmed - 1):+.2f} % (worst image {100 * (rmax - 1):+.2f} %; target at most +0.5 %: {_mark(rmed <= 1.005)}).")
        L += [""]

    if R.get("paired"):
        L += ["### 2. End to end as users run it (PNG out, one process per image)", "",
              "`kmq compress IN -k 64 -o OUT.png -f` (default options: the report is printed, so MSE, PSNR and SSIM are computed), "
              "`kmq ... -q` (no report, no metrics), `pngquant 64` (dithered, its default) and `pngquant --nofs 64`, run in turn on each image, "
              f"{meta['repeats']} times; per image the median time and the median of the paired ratios kmq / tool, then medians over images. "
              "Wall time of the whole process; peak RSS the largest seen; kmq's own `time` line for comparison.", "",
              "| images | tool | time (s) | kmq default / tool | peak RSS MB | MSE | PNG bytes |", "|---|---|---:|---:|---:|---:|---:|"]
        for name, res in R["paired"].items():
            rows = res["images"]
            for tool in rows[0]:
                if not isinstance(rows[0][tool], dict):
                    continue
                t = _median(r[tool]["seconds"] for r in rows)
                ratio = _median(r[tool]["ratio"] for r in rows)
                L.append(f"| {name} ({len(rows)}, {res['size']}) | {tool} | {t:.3f} | {ratio:.2f} | {max(r[tool]['peak_rss_mb'] for r in rows):.0f} | "
                         f"{_median(r[tool]['mse'] for r in rows):.2f} | {_median(r[tool]['bytes'] for r in rows):,.0f} |")
            L.append(f"| {name} | kmq's `time` line | {_median(r['kmq_time_line'] for r in rows):.3f} | | | | |")
            if "pngquant 64" in rows[0]:
                ratio = _median(r["pngquant 64"]["ratio"] for r in rows)
                if name.startswith("16"):
                    t = _median(r["kmq"]["seconds"] for r in rows)
                    checks.append(f"16 x 16 image, default options: {t:.3f} s (target under 0.2 s: {_mark(t < 0.2)}).")
                else:
                    checks.append(f"{name}, K = 64, default options: kmq / `pngquant 64` = {ratio:.2f} (median of paired ratios; target at most 1: {_mark(ratio <= 1)}).")
        L += [""]
    if inst:
        ratio = inst["first"] / inst["later"]
        L += ["### 3. First run after installing; size of the install", "",
              f"`{inst['wheel']}` ({inst['wheel_mb']:.1f} MB; compiled modules: {', '.join('`' + Path(c).name.split('.')[0] + '`' for c in inst['compiled'])}), "
              + (f"built by `pip wheel --no-deps` in {R['meta']['wheel_seconds']:.0f} s, " if R["meta"]["wheel_seconds"] == R["meta"]["wheel_seconds"] else "given by `--wheel`, ")
              + f"installed by `pip install WHEEL` in a new venv (pip byte-compiles). "
              f"The very first `kmq compress IN -k 64 -o OUT.png -f` there, then the median of {inst['n_later']} later runs.", "",
              "| first run | later runs | first / later | `python -c \"import kmq\"` |", "|---:|---:|---:|---:|",
              f"| {inst['first']:.3f} s | {inst['later']:.3f} s | {ratio:.2f} | {inst['import']:.3f} s |", "",
              "| install | site-packages MB | whole venv MB | largest in site-packages (MB) |", "|---|---:|---:|---|"]
        for label, key in (("`pip install .` (core)", "size_core"), ("`pip install '.[plot]'`", "size_plot")):
            s = inst.get(key)
            if s:
                L.append(f"| {label} | {s['site_packages_mb']:.0f} | {s['venv_mb']:.0f} | " + ", ".join(f"{n} {b:.0f}" for n, b in s["largest"]) + " |")
        L += [""]
        checks.append(f"First run after installing: {inst['first']:.3f} s against {inst['later']:.3f} s later ({100 * (ratio - 1):+.0f} %; target within 10 %: {_mark(ratio <= 1.1)}).")
    if R.get("large"):
        L += ["### 4. Large photographs, K = 256, PNG out", "",
              f"Median of {meta['large_repeats']} interleaved runs each. Mosaic: `benchmarks/make_large.py` (16 Kodak images, upscaled 1.5x, 4000 x 3000); "
              f"photo: `benchmarks/make_large.py --photo {LARGE_PHOTO}` (upscaled 1.2x with Lanczos).", "",
              "| image | tool | time (s) | peak RSS MB | MSE | PNG bytes |", "|---|---|---:|---:|---:|---:|"]
        for name, res in R["large"].items():
            row = res["images"][0]
            for tool in ("kmq", "kmq -q", "pngquant --nofs 256"):
                if tool in row:
                    r = row[tool]
                    L.append(f"| {name} ({res['size']}, {row['distinct']:,} colours) | {tool} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | {r['mse']:.2f} | {r['bytes']:,} |")
            if "pngquant --nofs 256" in row:
                f = 1 / row["pngquant --nofs 256"]["ratio"]
                checks.append(f"{name}, K = 256, default options: {f:.1f}x faster than `pngquant --nofs 256` (target 3x: {_mark(f >= 3)}), "
                              f"peak {row['kmq']['peak_rss_mb']:.0f} MB (target under 600 MB: {_mark(row['kmq']['peak_rss_mb'] < 600)}).")
        L += [""]
    if R.get("quality"):
        L += ["### 5. Quality against `pngquant --nofs`, and many images in one process", "",
              "`kmq compress IN -k K -o OUT.png -q -f --seed 0` and `pngquant --nofs -f -o OUT.png K IN`, one run per Kodak image: medians over images.", "",
              "| K | tool | time (s) | peak RSS MB | MSE | PSNR dB | PNG bytes | images where kmq's MSE is lower |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for k, rows in R["quality"].items():
            wins = sum(1 for r in rows if "pngquant" in r and r["kmq"]["mse"] < r["pngquant"]["mse"]) if "pngquant" in rows[0] else None
            for tool in ("kmq", "pngquant"):
                if tool in rows[0]:
                    mse = _median(r[tool]["mse"] for r in rows)
                    L.append(f"| {k} | {tool} | {_median(r[tool]['seconds'] for r in rows):.3f} | {max(r[tool]['peak_rss_mb'] for r in rows):.0f} | {mse:.2f} | {psnr(mse):.2f} | "
                             f"{_median(r[tool]['bytes'] for r in rows):,.0f} | {f'{wins} / {len(rows)}' if tool == 'kmq' and wins is not None else ''} |")
            if wins is not None:
                checks.append(f"K = {k}: kmq's MSE lower than `pngquant --nofs`'s on {wins} of {len(rows)} Kodak images.")
        L += [""]
    if R.get("batch"):
        L += ["All Kodak images given to one process (`kmq compress IN1 ... -o FOLDER --format png -q -f --seed 0`, `pngquant --nofs --ext -pq.png K IN1 ...`):", "",
              "| K | kmq, one process | pngquant, one process | outputs (kmq, pngquant) |", "|---:|---:|---:|---:|"]
        for k, res in R["batch"].items():
            pq = res.get("pngquant")
            pq_time = f"{pq['seconds']:.2f} s" if pq else "-"
            L.append(f"| {k} | {res['kmq']['seconds']:.2f} s | {pq_time} | {res['kmq']['outputs']}, {pq['outputs'] if pq else '-'} |")
        L += [""]
    L += ["### How the engine gets there", "",
          "k-means runs on the colour histogram (distinct colours weighted by pixel counts: the same objective as on the pixels), coarse to fine "
          "(5-, 6-, 7-bit bins, then the exact colours; binned on the working space's lightness levels when sRGB levels put most pixels in a few bins), Lloyd with Hamerly's bounds and sort-means search; pixels are counted in a hash table "
          "(up to 2 MP), sorted (up to 16 MP) or counted in a dense 2^24 table, and mapped by an exact integer nearest-entry search plus one gather. The loops are Cython "
          "extension modules compiled when the package is built (no JIT, nothing compiled or cached at run time); they release the GIL and run "
          "on all cores from Python threads over fixed ranges, so results do not depend on the thread count. PNG output is deflated on all "
          "cores from 0.26 megapixels up, in runs fixed by the size.", "", "### Targets", ""]
    L += [f"- {c}" for c in checks]
    L += ["", END]
    return "\n".join(L) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        before = text[: text.index(BEGIN)]
        after = text[text.index(END) + len(END) :].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="kmq's compiled core against scikit-learn, Pillow and pngquant.")
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--k", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7, help="interleaved runs per image, end to end")
    parser.add_argument("--large-repeats", type=int, default=3)
    parser.add_argument("--wheel", type=Path, help="use this wheel of kmq instead of building one")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each folder")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 images a folder, K = 64, 1 seed, 1 repeat, one large image")
    parser.add_argument("--out", type=Path, default=None, help="default docs/benchmarks.md (with --quick: /tmp/kmq-bench/quick.md)")
    parser.add_argument("--raw", type=Path, default=Path("/tmp/kmq-bench/raw.json"))
    parser.add_argument("--from-raw", type=Path, help="rewrite the section from an earlier run's raw JSON (no measuring)")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "K"), help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), [str(args.folder)] + args.files, args.seeds)
        return
    if args.out is None:
        args.out = Path("/tmp/kmq-bench/quick.md") if args.quick else ROOT / "docs" / "benchmarks.md"
    if args.from_raw:
        section = report(json.loads(args.from_raw.read_text()))
        write_section(args.out, section)
        print(section)
        return
    if args.quick:
        args.limit, args.k, args.seeds, args.repeats, args.large_repeats = 2, [64], 1, 1, 1
    command = ("python benchmarks/compare.py " + " ".join(sys.argv[1:])).strip()
    meta = {"command": command, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": _load_avg(), "k": args.k,
            "seeds": args.seeds, "repeats": args.repeats, "large_repeats": args.large_repeats, "gnu_time": bool(GNU_TIME), "skipped": [], "n_files": {}}
    R = {"machine": machine(), "meta": meta, "api": {}}
    workdir = Path(tempfile.mkdtemp(prefix="kmq-bench-"))
    kodak = sorted(args.folder.resolve().glob("*.png"))[: args.limit]
    if not kodak:
        raise SystemExit(f"no PNG images in {args.folder}")
    sets = {"kodak": kodak}
    if args.photos.is_dir():
        sets["photos"] = prepare_photos(args.photos, workdir, args.limit)
    else:
        meta["skipped"].append(f"the photos ({args.photos} not found)")
    meta["n_files"] = {name: len(files) for name, files in sets.items()}
    methods = list(API_METHODS)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        meta["skipped"].append("scikit-learn (its API rows)")
        methods = [m for m in methods if not m.startswith("sklearn")]
    pngquant = shutil.which("pngquant")
    if not pngquant:
        meta["skipped"].append("pngquant (its end-to-end rows)")
    try:
        for name, files in sets.items():
            for k in args.k:
                for method in methods:
                    print(f"api {name} {method} K={k}", file=sys.stderr, flush=True)
                    R["api"][f"{name}|{method}|{k}"] = run_worker(method, k, files, args.seeds)
        print("wheel and fresh venv", file=sys.stderr, flush=True)
        wheel, meta["wheel_seconds"] = build_wheel(workdir, args.wheel)
        R["install"] = install(workdir, wheel, kodak[0], 2 if args.quick else 5)
        kmq = str(Path(R["install"]["venv"]) / "bin" / "kmq")
        from PIL import Image

        with Image.open(kodak[0]) as image:
            image.convert("RGB").resize((16, 16), Image.Resampling.LANCZOS).save(workdir / "tiny-16x16.png")
        R["paired"] = {}
        for name, files in (("Kodak", kodak), ("photos at 768 px", sets.get("photos")), ("16 x 16", [workdir / "tiny-16x16.png"])):
            if files:
                print(f"end to end {name}", file=sys.stderr, flush=True)
                R["paired"][name] = paired(files, 64, kmq, pngquant, workdir, args.repeats)
        R["quality"] = {k: quality(kodak, k, kmq, pngquant, workdir) for k in args.k}
        R["batch"] = {k: one_process(kodak, k, kmq, pngquant, workdir) for k in args.k}
        R["large"] = {}
        larges = [("mosaic, 12 MP", Path("/tmp/kmq-bench/mosaic-12mp.png"), [str(args.folder)])]
        if (args.photos / LARGE_PHOTO).exists() and not args.quick:
            larges.append(("photo, 14 MP", Path("/tmp/kmq-bench/photo-14mp.png"), ["--photo", str(args.photos / LARGE_PHOTO)]))
        for name, path, extra in larges:
            if not path.exists():
                subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_large.py"), *extra, "-o", str(path)], check=True)
            print(f"large {name}", file=sys.stderr, flush=True)
            R["large"][name] = paired([path], 256, kmq, pngquant, workdir, args.large_repeats)
        add_plot_extra(R["install"], wheel)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta["load_end"] = _load_avg()
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    args.raw.write_text(json.dumps(R, indent=1))
    section = report(R)
    write_section(args.out, section)
    print(section)


if __name__ == "__main__":
    main()
