"""Build the 12-megapixel test photograph used by benchmarks/compare.py.

A 4 x 4 mosaic of the first 16 Kodak images (portrait ones turned to
landscape), 3072 x 2048, upscaled 1.5x with Lanczos to 4608 x 3072 and
cropped to the centre 4000 x 3000 (12.0 megapixels). Real photographic
content, at the size of a phone camera picture. The result is written
outside the repository (default /tmp/kmq-bench/mosaic-12mp.png).

With ``--photo PATH`` it instead upscales one photograph (for example a
3840 x 2560 one of ../shared/bench/photos) by ``--scale`` (default 1.2, so
4608 x 3072 = 14.2 megapixels) with Lanczos: a modern photograph with
hundreds of thousands of distinct colours, where the mosaic of scans has
fewer.

Usage: python benchmarks/make_large.py [KODAK_FOLDER] [-o OUTPUT.png]
       python benchmarks/make_large.py --photo PHOTO [--scale 1.2] [-o OUTPUT.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KODAK = ROOT.parent / "shared" / "bench" / "kodak"
DEFAULT_OUTPUT = Path("/tmp/kmq-bench/mosaic-12mp.png")
TILE = (768, 512)
SIZE = (4000, 3000)


def make_large(kodak: Path, output: Path) -> Path:
    """Write the mosaic to ``output`` (PNG, RGB, 4000 x 3000) and return it."""
    files = sorted(kodak.glob("*.png"))[:16]
    if len(files) < 16:
        raise SystemExit(f"need 16 images in {kodak}, found {len(files)}")
    mosaic = Image.new("RGB", (4 * TILE[0], 4 * TILE[1]))
    for i, path in enumerate(files):
        with Image.open(path) as tile:
            tile = tile.convert("RGB")
            if tile.height > tile.width:
                tile = tile.transpose(Image.Transpose.ROTATE_90)
            mosaic.paste(tile.resize(TILE), ((i % 4) * TILE[0], (i // 4) * TILE[1]))
    big = mosaic.resize((mosaic.width * 3 // 2, mosaic.height * 3 // 2), Image.Resampling.LANCZOS)
    left, top = (big.width - SIZE[0]) // 2, (big.height - SIZE[1]) // 2
    big = big.crop((left, top, left + SIZE[0], top + SIZE[1]))
    output.parent.mkdir(parents=True, exist_ok=True)
    big.save(output, "PNG", compress_level=6)
    return output


def upscale_photo(photo: Path, output: Path, scale: float = 1.2) -> Path:
    """Write ``photo`` upscaled by ``scale`` (Lanczos) to ``output`` (PNG, RGB)."""
    with Image.open(photo) as image:
        image = image.convert("RGB")
        big = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    output.parent.mkdir(parents=True, exist_ok=True)
    big.save(output, "PNG", compress_level=6)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kodak", nargs="?", type=Path, default=DEFAULT_KODAK)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--photo", type=Path, help="upscale this photograph instead of building the mosaic")
    parser.add_argument("--scale", type=float, default=1.2)
    args = parser.parse_args()
    path = upscale_photo(args.photo, args.output, args.scale) if args.photo else make_large(args.kodak, args.output)
    print(path)


if __name__ == "__main__":
    main()
