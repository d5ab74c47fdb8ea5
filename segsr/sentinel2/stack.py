"""Bands of a product stacked by name into one raster (a GDAL VRT held in memory), on one grid.

Each band carries its description (the band name), the product's NODATA value and its GDAL scale/offset
(reflectance = DN * scale + offset), so any GDAL reader sees calibrated, named bands.
"""

from dataclasses import dataclass
from xml.sax.saxutils import escape

import rasterio
from rasterio.errors import RasterioError

from segsr.sentinel2.product import QA_LAYERS, Product
from segsr.utils.errors import SegSRError

MEASUREMENT_RESAMPLING = 'cubic'
CATEGORY_RESAMPLING = 'nearest'


@dataclass(frozen=True)
class Grid:
    """A product grid: size, transform (GDAL order) and CRS as WKT."""

    width: int
    height: int
    geotransform: tuple[float, ...]
    crs: str
    resolution: int


@dataclass(frozen=True)
class SourceBand:
    band: str
    path: str
    width: int
    height: int
    dtype: str
    resolution: int


def describe(product: Product, band: str, resolution: int | None = None) -> tuple[SourceBand, Grid]:
    """The band's file, its pixel size and type, and its grid; a one-line error when GDAL cannot read it."""
    file = product.band_file(band, resolution)
    try:
        with rasterio.open(file.path) as dataset:
            grid = Grid(dataset.width, dataset.height, dataset.transform.to_gdal(),
                        dataset.crs.to_wkt() if dataset.crs else '', file.resolution)
            return SourceBand(band, file.path, dataset.width, dataset.height, dataset.dtypes[0], file.resolution), grid
    except RasterioError as error:
        raise SegSRError(f'{product.name}: band {band} ({file.path}) cannot be read ({str(error).splitlines()[0]}); '
                         'download the product again') from None


def target_grid(product: Product, bands: tuple[str, ...], resample: bool) -> Grid:
    """The grid the stack is on: the bands' common resolution, or with ``resample`` the finest of them."""
    resolutions = {band: product.band_file(band).resolution for band in bands}
    finest = min(resolutions.values())
    coarser = [band for band, resolution in resolutions.items() if resolution != finest]
    if coarser and not resample:
        raise SegSRError(f'{product.name}: bands {",".join(bands)} mix resolutions ({coarser[0]} is '
                         f'{resolutions[coarser[0]]} m, others {finest} m): ask for resampling to {finest} m '
                         '(--resample) or pick bands of one resolution')
    return describe(product, next(band for band in bands if resolutions[band] == finest), finest)[1]


def band_xml(index: int, source: SourceBand, grid: Grid, scale: float, offset: float, nodata: float | None,
             resampling: str) -> str:
    nodata_xml = '' if nodata is None else f'<NoDataValue>{nodata:g}</NoDataValue>'
    calibration = '' if scale == 1 and offset == 0 else f'<Offset>{offset!r}</Offset><Scale>{scale!r}</Scale>'
    return (f'<VRTRasterBand dataType="{gdal_type(source.dtype)}" band="{index}">'
            f'<Description>{escape(source.band)}</Description>{nodata_xml}{calibration}'
            f'<SimpleSource resampling="{resampling}"><SourceFilename relativeToVRT="0">{escape(source.path)}'
            '</SourceFilename><SourceBand>1</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{source.width}" ySize="{source.height}"/>'
            f'<DstRect xOff="0" yOff="0" xSize="{grid.width}" ySize="{grid.height}"/></SimpleSource></VRTRasterBand>')


def gdal_type(dtype: str) -> str:
    names = {'uint8': 'Byte', 'uint16': 'UInt16', 'int16': 'Int16', 'uint32': 'UInt32', 'int32': 'Int32',
             'float32': 'Float32', 'float64': 'Float64'}
    if dtype not in names:
        raise SegSRError(f'band type {dtype} is not one a Sentinel-2 product uses (uint16, uint8)')
    return names[dtype]


def grid_xml(grid: Grid, bands: list[str]) -> str:
    transform = ','.join(repr(value) for value in grid.geotransform)
    return (f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}"><SRS>{escape(grid.crs)}</SRS>'
            f'<GeoTransform>{transform}</GeoTransform>{"".join(bands)}</VRTDataset>')


def stack_vrt(product: Product, bands: tuple[str, ...], resample: bool = False) -> str:
    """The VRT of ``bands`` in the given order: calibrated measurement bands, on the grid of :func:`target_grid`.

    Coarser bands are brought to the finest resolution by cubic convolution, only with ``resample``."""
    if len(set(bands)) != len(bands):
        raise SegSRError(f'{product.name}: a band is named twice in {",".join(bands)}: name each band once')
    layers = [band for band in bands if band in QA_LAYERS]
    if layers:
        raise SegSRError(f'{product.name}: {layers[0]} holds classes, not a band to super-resolve; it is written '
                         'beside the output on its grid: drop it from --bands')
    grid = target_grid(product, bands, resample)
    calibration = product.calibration(list(bands))
    parts = []
    for index, band in enumerate(bands):
        source, own = describe(product, band, grid.resolution)
        check_footprint(product, band, own, grid)
        parts.append(band_xml(index + 1, source, grid, float(calibration.scale[index]),
                              float(calibration.offset[index]), product.metadata.nodata, MEASUREMENT_RESAMPLING))
    return grid_xml(grid, parts)


def layer_vrt(product: Product, layer: str, grid: Grid) -> str:
    """A categorical layer (SCL) on ``grid`` by nearest neighbour: classes stay classes."""
    source, own = describe(product, layer)
    check_footprint(product, layer, own, grid)
    return grid_xml(grid, [band_xml(1, source, grid, 1.0, 0.0, None, CATEGORY_RESAMPLING)])


def check_footprint(product: Product, band: str, own: Grid, grid: Grid) -> None:
    """A band covers the same ground as the grid (same origin, same extent), whatever its pixel size."""
    extent = (own.width * own.geotransform[1], own.height * own.geotransform[5])
    target = (grid.width * grid.geotransform[1], grid.height * grid.geotransform[5])
    same_origin = abs(own.geotransform[0] - grid.geotransform[0]) < 1e-6 and \
        abs(own.geotransform[3] - grid.geotransform[3]) < 1e-6
    if not same_origin or any(abs(a - b) > 1e-6 for a, b in zip(extent, target, strict=True)):
        raise SegSRError(f'{product.name}: band {band} does not cover the same tile as the others '
                         f'(origin {own.geotransform[0]:g},{own.geotransform[3]:g}); the product is damaged')
