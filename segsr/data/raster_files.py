"""The rasters of a dataset: found in a folder, a glob or a list file; windows listed; HR/LR paired by georeference.

A window list (``meta_info_file``, as written by ``scripts/make_raster_splits.py``) has one line per window:
``name col row width height`` in HR pixels, ``name`` relative to ``dataroot_gt`` (or absolute); a line with
the name only stands for the whole raster.
"""

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from segsr.data.geotiff import RasterSource
from segsr.data.image_files import MISSING_FIX, BadImageFile, ImageHeader
from segsr.sentinel2.product import is_product
from segsr.utils.errors import SegSRError

RASTER_SUFFIXES = ('.tif', '.tiff', '.vrt', '.jp2', '.img')
GLOB_CHARACTERS = '*?['
PIXEL_TOLERANCE = 1e-6
"""Extents and pixel sizes agree when they differ by less than this share of a pixel."""


@dataclass(frozen=True)
class RasterWindow:
    """A rectangle of an HR raster, in its pixels."""

    path: str
    col: int
    row: int
    width: int
    height: int

    def line(self) -> str:
        return f'{self.path} {self.col} {self.row} {self.width} {self.height}'


def is_glob(path: str) -> bool:
    return any(char in path for char in GLOB_CHARACTERS)


def list_rasters(root: str) -> list[str]:
    """Rasters and Sentinel-2 products of a folder (sorted), a glob, a product, or a list file with one path per
    line (relative to the list)."""
    if is_glob(root):
        paths = sorted(glob.glob(root))
    elif is_product(root):
        paths = [root]
    elif os.path.isdir(root):
        paths = sorted(str(path) for path in Path(root).iterdir()
                       if path.suffix.lower() in RASTER_SUFFIXES or is_product(path))
    elif os.path.isfile(root) and Path(root).suffix.lower() in RASTER_SUFFIXES:
        paths = [root]
    elif os.path.isfile(root):
        base = os.path.dirname(root)
        with open(root, encoding='utf-8') as handle:
            paths = [os.path.join(base, line.split()[0]) for line in handle if line.strip()]
    else:
        raise SegSRError(f'{root} is neither a folder, a glob, a raster nor a list file; point dataroot_gt at one')
    if not paths:
        raise SegSRError(f'no rasters ({", ".join(RASTER_SUFFIXES)}) found in {root}; put rasters there or fix it')
    return paths


def read_window_list(list_file: str, root: str) -> list[RasterWindow]:
    """The windows of a list file; names are taken relative to ``root`` (a folder) when not absolute."""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    windows = []
    with open(list_file, encoding='utf-8') as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            path = fields[0] if os.path.isabs(fields[0]) else os.path.join(base, fields[0])
            if len(fields) == 1:
                windows.append(RasterWindow(path, 0, 0, -1, -1))
                continue
            try:
                col, row, width, height = (int(field) for field in fields[1:5])
            except ValueError:
                col = -1
            if len(fields) != 5 or col < 0 or row < 0 or width < 1 or height < 1:
                raise SegSRError(f'{list_file} line {number}: expected "name col row width height" with '
                                 f'non-negative integers, got {line.strip()!r}; fix or regenerate the list')
            windows.append(RasterWindow(path, col, row, width, height))
    return windows


def whole(window: RasterWindow, width: int, height: int) -> RasterWindow:
    """A whole-raster entry made concrete; a listed window must lie inside its raster."""
    if window.width < 0:
        return RasterWindow(window.path, 0, 0, width, height)
    if window.col + window.width > width or window.row + window.height > height:
        raise SegSRError(f'window {window.line()} reaches outside {window.path} ({width}x{height}); '
                         'regenerate the list with scripts/make_raster_splits.py')
    return window


def raster_header(path: str) -> ImageHeader:
    """The size of a raster GDAL can open; a missing, unreadable or truncated file raises BadImageFile.

    Truncation is found by reading the last block of the first band: a TIFF cut short cannot give it.
    """
    if not os.path.exists(path):
        raise BadImageFile(f'{path} does not exist', MISSING_FIX)
    try:
        with rasterio.open(path) as dataset:
            block_rows, block_cols = dataset.block_shapes[0]
            last_row = (dataset.height - 1) // block_rows * block_rows
            last_col = (dataset.width - 1) // block_cols * block_cols
            dataset.read(1, window=Window(last_col, last_row, min(block_cols, dataset.width - last_col),
                                          min(block_rows, dataset.height - last_row)))
            return ImageHeader(dataset.width, dataset.height)
    except RasterioError as error:
        raise BadImageFile(f'{path} cannot be read as a raster ({str(error).splitlines()[0]})') from None


def pixel_size(source: RasterSource) -> tuple[float, float]:
    transform = source.dataset.transform
    return math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)


def georeference_problem(hr: RasterSource, lr: RasterSource, scale: int) -> str | None:
    """Why an LR raster is not the HR's area at ``scale`` times its pixel size, or None."""
    if hr.dataset.crs != lr.dataset.crs:
        return f'{lr.path} is in {lr.dataset.crs} but {hr.path} in {hr.dataset.crs}'
    (hr_x, hr_y), (lr_x, lr_y) = pixel_size(hr), pixel_size(lr)
    if abs(lr_x / hr_x - scale) > PIXEL_TOLERANCE * scale or abs(lr_y / hr_y - scale) > PIXEL_TOLERANCE * scale:
        return (f'{lr.path} has {lr_x:g}x{lr_y:g} pixels, {lr_x / hr_x:g} times those of {hr.path} '
                f'({hr_x:g}x{hr_y:g}), not scale {scale}')
    tolerance = PIXEL_TOLERANCE * lr_x + 0.5 * hr_x
    if any(abs(a - b) > tolerance for a, b in zip(hr.dataset.bounds, lr.dataset.bounds, strict=True)):
        return f'{lr.path} covers {tuple(lr.dataset.bounds)} but {hr.path} covers {tuple(hr.dataset.bounds)}'
    return None


def pair_by_georeference(hr_paths: list[str], lr_paths: list[str], scale: int) -> dict[str, str]:
    """Each HR raster's LR partner: the LR raster of the same CRS and extent at ``scale`` times the pixel size.

    Candidates are taken in order of name likeness, so a folder of same-named pairs pairs at once; an HR
    raster without a partner is one line naming the closest disagreement.
    """
    lr_sources = {path: RasterSource(path) for path in lr_paths}
    pairs = {}
    try:
        for hr_path in hr_paths:
            hr = RasterSource(hr_path)
            try:
                ordered = sorted(lr_paths, key=lambda path: Path(path).name != Path(hr_path).name)
                problems = [(path, georeference_problem(hr, lr_sources[path], scale)) for path in ordered]
            finally:
                hr.close()
            match = next((path for path, problem in problems if problem is None), None)
            if match is None:
                raise SegSRError(f'{problems[0][1]}; give each HR raster an LR raster of the same CRS and extent '
                                 f'with pixels {scale} times larger (scale), or fix dataroot_lq')
            pairs[hr_path] = match
    finally:
        for source in lr_sources.values():
            source.close()
    return pairs
