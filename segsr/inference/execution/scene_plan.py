"""What a scene will go through: the tiling and radiometry options, its band groups and the value map they use."""

import sys
from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from segsr.data.geotiff import RasterSource
from segsr.data.product_source import ProductSource, check_product_contract
from segsr.inference.execution.bands import BandRequest, band_groups, output_bands
from segsr.inference.execution.card_check import check_band_count, warn_if_far
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.tiling import count_tiles, tile_rows
from segsr.inference.io.arrays import ArraySource
from segsr.inference.io.image_io import ImageSource
from segsr.inference.io.inputs import open_source
from segsr.radiometry.contract import Radiometry, calibration_from_metadata
from segsr.radiometry.stretch import BandStretch, data_range_stretch, percentile_stretch, unsigned_range_stretch
from segsr.utils.errors import SegSRError


@dataclass(frozen=True)
class TilingOptions:
    tile: int = 256
    overlap: int = 32
    batch: int = 1


@dataclass(frozen=True)
class RadiometryOptions:
    """``bands``: 1-based groups as in GDAL, or 'each'; ``stretch`` is 'auto', 'range' or 'percentile'."""

    bands: BandRequest = None
    stretch: str = 'auto'
    percentiles: tuple[float, float] = (0.5, 99.5)
    allow_categorical: bool = False
    contract: Radiometry | None = None
    """The checkpoint's radiometric contract, which ``auto`` applies; None (or the 8-bit default) for none."""


def apply_contract(radiometry: RadiometryOptions, contract: Radiometry | None, warn: bool = True) -> RadiometryOptions:
    """``radiometry`` under a checkpoint's contract: its bands unless ``bands`` names others, and its value map
    under ``stretch='auto'``; another stretch replaces the map, with one warning (``warn``) on a line of its own."""
    if contract is None:
        return radiometry
    if radiometry.stretch != 'auto' and warn:
        tqdm.write(f'warning: stretch {radiometry.stretch} replaces the radiometric contract the weights were '
                   f'trained with ({contract.describe()}); outputs leave the trained value range', file=sys.stderr)
    bands = radiometry.bands if radiometry.bands is not None or not contract.bands else (contract.bands,)
    return replace(radiometry, bands=bands, contract=contract)


def choose_stretch(source: ImageSource | RasterSource | ArraySource, bands: list[int], options: RadiometryOptions,
                   name) -> BandStretch:
    """The checkpoint's contract when it has one (the values it was trained on, whatever the scene); else
    8-bit data keep their 0..255 scale (as in training) and deeper data are normalised by percentiles.

    ``range`` is the dtype's range for unsigned integers and the data's min..max for signed and
    float data, whose dtype range (-32768.. or ±3e38) says nothing about the values.
    """
    mode = options.stretch
    if mode == 'auto' and options.contract is not None and not options.contract.is_default:
        return contract_stretch(source, bands, options.contract, name)
    if mode == 'auto':
        mode = 'range' if source.dtype == np.uint8 else 'percentile'
    if mode == 'range':
        if source.dtype.kind == 'u':
            return unsigned_range_stretch(source.dtype, len(bands))
        return data_range_stretch(source.sample(bands))
    if mode == 'percentile':
        return percentile_stretch(source.sample(bands), *options.percentiles)
    raise SegSRError(f'unknown stretch {options.stretch!r}: use auto, range or percentile')


def contract_stretch(source: ImageSource | RasterSource | ArraySource, bands: list[int], contract: Radiometry,
                     name) -> BandStretch:
    """The contract's map of 0-based ``bands``: its scale/offset, or the file's own metadata (``from_metadata``)."""
    contract = contract.for_bands([band + 1 for band in bands])
    metadata = calibration_from_metadata(source.dataset, bands) if isinstance(source, RasterSource) else None
    if isinstance(source, ProductSource):
        check_product_contract(source, bands, contract)
    return contract.stretch(contract.calibration(metadata, str(name)), len(bands))


@dataclass(frozen=True)
class ScenePlan:
    """Which bands go through the network in which groups, where they land, and how values are mapped."""

    groups: list[list[int]]
    bands: list[int]
    stretch: BandStretch

    @property
    def position(self) -> dict[int, int]:
        return {band: index for index, band in enumerate(self.bands)}


def plan_scene(source: ImageSource | RasterSource, upscaler: TileUpscaler, radiometry: RadiometryOptions,
               name) -> ScenePlan:
    card = getattr(upscaler, 'card', None)  # an ONNX graph carries none
    check_band_count(card, source.band_count, source.alpha_band, radiometry.bands is not None, name)
    warn_if_far(card, source.dtype, getattr(source, 'pixels', None))
    groups = band_groups(radiometry.bands, source.band_count, source.alpha_band, upscaler.in_channels, name)
    bands = output_bands(groups)
    return ScenePlan(groups, bands, choose_stretch(source, bands, radiometry, name))


def check_contract_fits(source_path, upscaler: TileUpscaler, radiometry: RadiometryOptions) -> None:
    """The contract's map of a scene made before anything is written: a file whose own scale/offset metadata
    the contract cannot use (missing, zero, not finite) is refused at the start, not mid-run."""
    contract = radiometry.contract
    if contract is None or contract.is_default:
        return
    source = open_source(source_path)
    try:
        groups = band_groups(radiometry.bands, source.band_count, source.alpha_band, upscaler.in_channels,
                             source_path)
        contract_stretch(source, output_bands(groups), contract, source_path)
    finally:
        source.close()


def scene_tiles(height: int, width: int, groups: int, tiling: TilingOptions, band: tuple[int, int] | None = None
                ) -> int:
    """Network calls (tiles) a scene or a band of it takes, for progress reporting."""
    tiles = count_tiles(height, width, tiling.tile, tiling.overlap)
    if band is None:
        return tiles * groups
    per_row = tiles // tile_rows(height, tiling.tile, tiling.overlap)
    return (band[1] - max(band[0] - 1, 0)) * per_row * groups
