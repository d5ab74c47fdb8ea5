"""Finding the inputs of a run, naming their outputs, and checking both before any model is loaded."""

import os
from dataclasses import dataclass
from pathlib import Path

from segsr.data.geotiff import RasterSource
from segsr.data.product_source import ProductSource
from segsr.degradations.bicubic import MIN_LR_SIDE
from segsr.inference.execution.bands import BandRequest, check_band_numbers
from segsr.inference.io.arrays import ArraySource, read_npy
from segsr.inference.io.image_io import ImageSource
from segsr.sentinel2.product import SAFE_SUFFIX, is_product
from segsr.sentinel2.request import QA_SUFFIX, ProductInput
from segsr.utils.errors import SegSRError
from segsr.utils.walk import glob_files, walk_files

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
ARRAY_SUFFIX = '.npy'
TIFF_SUFFIXES = ('.tif', '.tiff')
RASTER_SUFFIXES = (*TIFF_SUFFIXES, '.vrt', '.img', '.jp2')
GDAL_VIRTUAL_PREFIX = '/vsi'
# Outputs beside the image: <stem> + suffix.
GUIDANCE_SUFFIX = '_guidance.tif'
SPREAD_SUFFIX = '_uncertainty.tif'
REPORT_SUFFIX = '_consistency.json'


@dataclass(frozen=True)
class InputFile:
    """One input and where its results go; ``source`` is a str for GDAL virtual paths (/vsizip/...)."""

    source: Path | str
    image: Path
    maps: Path | None
    spread: Path | None = None  # --uncertainty: the self-ensemble spread
    report: Path | None = None  # --consistency-report: the JSON
    overwrite: bool = False
    """Whether the outputs may replace files of those names; without it they are published only under free names."""
    qa: Path | None = None  # a Sentinel-2 L2A product: its SCL on the output grid

    @property
    def outputs(self) -> list[Path]:
        return [p for p in (self.image, self.maps, self.spread, self.report, self.qa) if p is not None]

    @property
    def name(self) -> str:
        return Path(self.source).name


def is_gdal_path(pattern: str) -> bool:
    return str(pattern).startswith(GDAL_VIRTUAL_PREFIX)


def is_raster(source: Path | str) -> bool:
    """GDAL reads it by window: TIFF, VRT and other raster formats, anything under a virtual path, products."""
    return isinstance(source, ProductInput) or is_gdal_path(str(source)) or \
        Path(source).suffix.lower() in RASTER_SUFFIXES


def in_product(path: Path, root: Path) -> bool:
    """A file inside a .SAFE folder belongs to that product, not to the inputs."""
    return any(part.upper().endswith(SAFE_SUFFIX) for part in path.relative_to(root).parts[:-1])


def is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith('.') for part in path.relative_to(root).parts)


def inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder)


def collect_inputs(pattern: str, recursive: bool = False, output: Path | None = None) -> list[tuple[Path | str, Path]]:
    """``(input, folder relative to the output)`` pairs: a file or GDAL path, the images of a folder
    (``recursive``: of its subfolders too, mirrored), or what a glob matches. Hidden files (segsr's temporary
    files among them) are not inputs, nor is anything in an ``output`` folder that lies inside the searched
    tree: the results of an earlier run are never taken for new inputs."""
    if is_gdal_path(pattern):
        return [(pattern, Path())]
    path = Path(pattern)
    if path.is_file() or is_product(path):
        return [(path, Path())]
    results = output.resolve() if output is not None else None
    if path.is_dir():
        results = results if results is not None and results != path.resolve() else None
        candidates = walk_files(path) if recursive else path.iterdir()
        found = [(p, p.parent.relative_to(path)) for p in candidates if p.is_file() and not is_hidden(p, path)
                 and not in_product(p, path)]
        found += [(p, p.parent.relative_to(path)) for p in product_folders(path, recursive)
                  if not is_hidden(p, path) and not inside(p, results)]
    else:
        found = [(Path(p), Path()) for p in glob_files(pattern, recursive) if not Path(p).name.startswith('.')]
    suffixes = (*IMAGE_SUFFIXES, *RASTER_SUFFIXES, ARRAY_SUFFIX)
    files = sorted((p, folder) for p, folder in found
                   if (p.is_file() and p.suffix.lower() in suffixes or is_product(p)) and not inside(p, results))
    if not files:
        raise SegSRError(f'no input images at {pattern}: pass an image file, a folder of images or a glob')
    return files


def product_folders(folder: Path, recursive: bool) -> list[Path]:
    """The .SAFE folders in ``folder`` (at any depth with ``recursive``), never looking inside one."""
    found, pending = [], [folder]
    while pending:
        for entry in sorted(pending.pop().iterdir()):
            if entry.is_dir() and is_product(entry):
                found.append(entry)
            elif recursive and entry.is_dir() and not entry.is_symlink():
                pending.append(entry)
    return found


def output_name(source: Path | str) -> str:
    """The input's name; rasters that are not TIFFs (VRT, JP2, ...) and products are written as GeoTIFF."""
    if isinstance(source, ProductInput):
        return f'{source.stem}.tif'
    name = Path(source).name
    if is_raster(source) and Path(name).suffix.lower() not in TIFF_SUFFIXES:
        return f'{Path(name).stem}.tif'
    return name


def outputs_beside(source: Path | str, image: Path, guidance: bool = False, uncertainty: bool = False,
                   report: bool = False, overwrite: bool = False) -> InputFile:
    """The outputs of ``source``: ``image``, and beside it, where asked for, the guidance maps
    (``<stem>_guidance.tif``), the self-ensemble spread (``<stem>_uncertainty.tif``) and the consistency
    report (``<stem>_consistency.json``); ``overwrite`` lets them replace files of those names."""
    stem = image.with_suffix('')
    qa = isinstance(source, ProductInput) and source.has_scene_classes
    return InputFile(source, image, Path(f'{stem}{GUIDANCE_SUFFIX}') if guidance else None,
                     Path(f'{stem}{SPREAD_SUFFIX}') if uncertainty else None,
                     Path(f'{stem}{REPORT_SUFFIX}') if report else None, overwrite,
                     Path(f'{stem}{QA_SUFFIX}') if qa else None)


def plan_input(source: Path | str, folder: Path, guidance: bool = False, uncertainty: bool = False,
               report: bool = False, overwrite: bool = False) -> InputFile:
    """Output paths for one input written into ``folder`` under its own name (see :func:`outputs_beside`)."""
    return outputs_beside(source, folder / output_name(source), guidance, uncertainty, report, overwrite)


def open_source(source: Path | str | ProductInput) -> ImageSource | RasterSource | ArraySource:
    """Rasters (geo or not) and products go through rasterio and stream; PNG, JPEG and ``.npy`` arrays are read
    whole."""
    if isinstance(source, ProductInput):
        return ProductSource(source)
    if is_raster(source):
        return RasterSource(source)
    if Path(source).suffix.lower() == ARRAY_SUFFIX:
        pixels = read_npy(Path(source))
        return ArraySource(pixels if pixels.ndim == 3 else pixels[None], what=str(source), flat=pixels.ndim == 2)
    if Path(source).suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(Path(source))
    raise SegSRError(f'cannot read {source}: unsupported format, pass PNG, JPEG, TIFF, .npy or a raster GDAL reads')


def check_writable(folder: Path) -> None:
    """The output folder, or the nearest existing folder above it, must accept new files."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SegSRError(f'cannot write into {folder} ({existing} is not a writable folder): choose another --output')


def check_input(
    planned: InputFile, bands: BandRequest, allow_categorical: bool, overwrite: bool, taken: set[Path]
) -> None:
    """Everything that can be known without the network: readable, bands, categories, outputs free."""
    for target in planned.outputs:
        if not is_gdal_path(str(planned.source)) and target.resolve() == Path(planned.source).resolve():
            raise SegSRError(f'output {target} would overwrite the input: choose another --output folder')
        if target in taken:
            raise SegSRError(f'output {target} is also the output of another input: give the inputs distinct names')
        if target.exists() and not overwrite:
            raise SegSRError(f'output {target} exists: pass --overwrite to replace it or choose another --output')
    source = open_source(planned.source)
    try:
        if planned.report is not None and min(source.height, source.width) < MIN_LR_SIDE:
            raise SegSRError(f'{planned.source} is {source.height}x{source.width} pixels, too small for '
                             f'--consistency-report (its bicubic degradation needs {MIN_LR_SIDE} pixels a side): '
                             'drop the flag')
        check_band_numbers(bands, source.band_count, planned.source)
        if isinstance(source, RasterSource) and not allow_categorical:
            selected = range(source.band_count) if bands is None or isinstance(bands, str) else [
                band - 1 for group in bands for band in group
            ]
            reason = source.categorical_reason(list(selected))
            if reason:
                raise SegSRError(
                    f'{planned.source} holds classes, not measurements ({reason}); super-resolving would invent '
                    'new classes: pass --allow-categorical to run anyway'
                )
    finally:
        source.close()
    taken.update(planned.outputs)
