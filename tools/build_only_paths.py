"""Print, one per line, the paths under a package folder that the wheel must
not hold (for meson.build's install_subdir): with ``files``, build files
(meson.build, Cython sources, generated C, byte code); with ``dirs``, the
``__pycache__`` folders."""

import pathlib
import sys

top = pathlib.Path(sys.argv[2])
if sys.argv[1] == "files":
    paths = [p for p in top.rglob("*") if p.is_file() and (p.suffix in {".pyx", ".pxd", ".c", ".pyc"} or p.name == "meson.build")]
else:
    paths = [p for p in top.rglob("__pycache__") if p.is_dir()]
print("\n".join(sorted(p.relative_to(top).as_posix() for p in paths)))
