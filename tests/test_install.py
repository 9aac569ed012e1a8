"""The install itself: what ``import kmq`` pulls in, a missing extra, the
sdist and the wheel built from it, and a real read-only install run by an
unprivileged user with no writable home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_kmq_and_a_compress_run_import_no_heavy_library():
    code = (
        "import sys, kmq\n"
        "from kmq._cli import main\n"
        "heavy = ('matplotlib', 'scipy', 'skimage', 'numba', 'sklearn')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "import tempfile, os\n"
        "folder = tempfile.mkdtemp()\n"
        "code = main(['compress', '-k', '8', '--seed', '0', '-q', '-o', os.path.join(folder, 'out.png')])\n"
        "print(code, [m for m in heavy if m in sys.modules])\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "0 []"]


def test_a_missing_plot_extra_names_the_install_line(tmp_path):
    # matplotlib made unimportable, as in `pip install kmq` without [plot].
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from kmq._cli import main\n"
        f"sys.exit(main(['plot', 'compare', '-o', {str(tmp_path / 'c.png')!r}]))\n"
    )
    result = _python(code)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "kmq: error: kmq plot draws with matplotlib, which comes with the plot extra: pip install 'kmq[plot]'"
    )
    assert not (tmp_path / "c.png").exists()
    result = _python("import sys; sys.modules['matplotlib'] = None\nimport kmq.plot")
    assert "pip install 'kmq[plot]'" in result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist of this checkout and the wheel built from that sdist
    (``python -m build``, isolated: what a packager runs). The sdist holds
    the files committed to git (meson dist), not uncommitted edits."""
    if not (ROOT / "meson.build").exists() or not (ROOT / ".git").exists():
        pytest.skip("needs the source checkout (meson.build and git, for the sdist)")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("kmq-*.tar.gz")
    (wheel,) = out.glob("kmq-*.whl")
    return sdist, wheel


def test_the_wheel_holds_the_compiled_kernels_and_the_license(built):
    import tarfile

    sdist, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    compiled = sorted(Path(n).name.split(".")[0] for n in names if n.endswith(".so") or n.endswith(".pyd"))
    assert {"_histogram", "_kmeans", "_remap", "_metrics"} <= set(compiled)
    assert "kmq/FORMAT.md" in names and "kmq/data/kodim23.png" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert not any(n.endswith(".pyx") or n.endswith("meson.build") for n in names)
    with tarfile.open(sdist) as archive:
        members = {Path(m).relative_to(Path(m).parts[0]).as_posix() for m in archive.getnames() if "/" in m}
    assert {"LICENSE", "meson.build", "src/kmq/_engine/_kmeans.pyx", "src/kmq/_metrics.pyx", "README.md"} <= members


def _interpreter_for_another_user() -> str | None:
    """A Python 3.11 that an unprivileged user can run: this one's binary
    often lives under root's home (mode 700); Debian's does not."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if os.path.exists(candidate):
            version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
            if version.stdout.strip() == str(tuple(sys.version_info[:2])):
                return candidate
    return None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching to an unprivileged user needs root")
def test_runs_from_a_read_only_install_with_no_writable_home(built):
    python = _interpreter_for_another_user()
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if python is None or runuser is None:
        pytest.skip("no Python of this version that user nobody can run, or no runuser")
    _, wheel = built
    # Outside /tmp/pytest-of-root (mode 700): nobody must reach the files.
    top = Path(tempfile.mkdtemp(prefix="kmq-readonly-", dir="/tmp"))
    try:
        site = top / "site"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
            check=True, capture_output=True, timeout=300,
        )
        # NumPy and Pillow from this environment, copied so nobody can read them.
        for module in (np, PIL):
            package = Path(module.__file__).parent
            shutil.copytree(package, site / package.name)
        for libs in {p for m in (np, PIL) for p in Path(m.__file__).parent.parent.glob("*.libs")}:
            shutil.copytree(libs, site / libs.name)  # the wheels' bundled shared libraries
        for path in [top, *top.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        out = top / "out"
        out.mkdir()
        os.chown(out, 65534, 65534)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONPATH": str(site)}
        run = subprocess.run(
            [runuser, "-u", "nobody", "--", python, "-m", "kmq", "compress", "-k", "16", "--seed", "0", "-o", str(out / "parrots.png")],
            capture_output=True, text=True, env=env, timeout=300, cwd=str(out),
        )
        assert run.returncode == 0, run.stderr
        assert "PSNR" in run.stdout
        with Image.open(out / "parrots.png") as image:
            assert image.mode == "P" and image.size == (768, 512)
    finally:
        shutil.rmtree(top, ignore_errors=True)
