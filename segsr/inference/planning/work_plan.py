"""Which process runs what: inputs balanced by pixel count, and scenes too large for one share split into
bands of tile rows. Every process computes the same plan from the same headers, so nobody hands work out."""

import warnings
from dataclasses import dataclass

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from segsr.data.product_source import ProductSource
from segsr.inference.execution.bands import EACH_BAND, BandRequest
from segsr.inference.execution.scene_plan import TilingOptions, scene_tiles
from segsr.inference.execution.tiling import tile_rows
from segsr.inference.io.inputs import is_raster
from segsr.sentinel2.request import ProductInput
from segsr.utils.errors import SegSRError


@dataclass(frozen=True)
class SceneHeader:
    """What a header says, without decoding pixels: size and how many network passes (band groups)."""

    height: int
    width: int
    groups: int
    raster: bool

    @property
    def pixels(self) -> int:
        return self.height * self.width


def band_passes(bands: BandRequest, band_count: int) -> int:
    """Network passes per tile, for progress (``each`` counts an alpha band too: an estimate)."""
    if bands is None:
        return 1
    return band_count if bands == EACH_BAND else len(bands)


def read_header(source, bands: BandRequest) -> SceneHeader | None:
    """GDAL reads the header of rasters and images alike; None for a file it cannot open (its check says why).

    A Sentinel-2 product is its band stack, run whole by one process (its SCL is written beside it whole)."""
    if isinstance(source, ProductInput):
        try:
            stack = ProductSource(source)
        except SegSRError:
            return None
        try:
            return SceneHeader(stack.height, stack.width, band_passes(bands, stack.band_count), raster=False)
        finally:
            stack.close()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)
            with rasterio.open(source) as dataset:
                return SceneHeader(dataset.height, dataset.width, band_passes(bands, dataset.count), is_raster(source))
    except (RasterioError, OSError):
        return None


@dataclass(frozen=True)
class WorkUnit:
    """Input ``index`` (or tile rows ``band`` of it, part ``part`` of ``parts``) on ``rank``."""

    index: int
    rank: int
    tiles: int
    pixels: int
    band: tuple[int, int] | None = None
    part: int = 0
    parts: int = 1


def split_rows(rows: int, parts: int) -> list[tuple[int, int]]:
    """``rows`` tile rows in ``parts`` contiguous bands of (nearly) equal height."""
    edges = [round(k * rows / parts) for k in range(parts + 1)]
    return [(edges[k], edges[k + 1]) for k in range(parts)]


def plan_units(headers: list[SceneHeader | None], world: int, tiling: TilingOptions, split: bool) -> list[WorkUnit]:
    """Balance by pixels: a raster larger than one rank's share (all pixels / ranks) is split into bands
    across the least loaded ranks (only where ``split``: ranks that can meet to assemble it); the other
    inputs go, largest first, to the least loaded rank."""
    loads = [0] * world
    units = []
    share = sum(h.pixels for h in headers if h is not None) / world

    def least_loaded(count: int) -> list[int]:
        return sorted(range(world), key=lambda rank: (loads[rank], rank))[:count]

    whole = []
    for index, header in enumerate(headers):
        if header is None:
            whole.append((0, index))
            continue
        rows = tile_rows(header.height, tiling.tile, tiling.overlap)
        if split and world > 1 and header.raster and rows > 1 and header.pixels > share:
            bands = split_rows(rows, min(world, rows))
            for part, (band, rank) in enumerate(zip(bands, least_loaded(len(bands)), strict=True)):
                pixels = header.pixels * (band[1] - band[0]) // rows
                units.append(WorkUnit(index, rank, scene_tiles(header.height, header.width, header.groups, tiling,
                                                               band), pixels, band, part, len(bands)))
                loads[rank] += pixels
        else:
            whole.append((header.pixels, index))
    for pixels, index in sorted(whole, key=lambda item: (-item[0], item[1])):
        header = headers[index]
        rank = least_loaded(1)[0]
        tiles = 0 if header is None else scene_tiles(header.height, header.width, header.groups, tiling)
        units.append(WorkUnit(index, rank, tiles, pixels))
        loads[rank] += pixels
    return sorted(units, key=lambda unit: (unit.band is None, unit.index, unit.part))
