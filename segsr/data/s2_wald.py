"""Training pairs for the Sentinel-2 reference network by the Wald protocol: the whole product degraded by two.

The 10 m bands brought to 20 m and the 20 m bands to 40 m keep their relation: a network that learns to bring
the 40 m bands back to 20 m with the 20 m reference is then run one level up (20 m bands to 10 m with the 10 m
reference), so no other sensor is needed. Each pair lies on the product's 20 m grid, in reflectance:

- LR (the network's input, as ``segsr-infer --resample`` builds it at 10 m): the reference bands degraded to
  20 m, then the coarse bands degraded to 40 m and brought back to 20 m by MATLAB bicubic (cubic convolution,
  the kernel of GDAL's resampling);
- HR (the target): the same degraded reference bands, then the coarse bands as the product holds them.

Both are written as L2A products store bands (uint16 DNs, reflectance = DN / 10000 - 0.1, 0 for no data) with
that calibration as GDAL scale and offset, so a model trained on them reads products with the same contract.

The degradation is the sensor model's PSF (:class:`segsr.degradations.sensor.SensorDegradation`, no noise) with
an MTF at the coarse Nyquist frequency, Sentinel-2's being about 0.3, then sampling every second pixel.
"""

from pathlib import Path

import numpy as np
import rasterio
import torch
from basicsr.utils.matlab_functions import imresize
from rasterio.transform import Affine

from segsr.data.product_source import ProductSource
from segsr.degradations.random_state import DegradationRNG
from segsr.degradations.sensor import SensorDegradation
from segsr.radiometry.contract import Radiometry
from segsr.sentinel2.layout import QUANTIFICATION, baseline_offset, to_digital_numbers
from segsr.sentinel2.product import Product
from segsr.sentinel2.request import ProductInput
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_path

REFERENCE_BANDS = ('B04', 'B03', 'B02', 'B08')
TARGET_BANDS = ('B05', 'B06', 'B07', 'B8A', 'B11', 'B12')
WALD_MTF = 0.3
PAIR_BASELINE = '05.09'


def halve(bands: np.ndarray, mtf: float) -> np.ndarray:
    """(C, H, W) -> (C, H / 2, W / 2): the sensor PSF of ``mtf`` at the halved grid's Nyquist, then sampling."""
    sensor = SensorDegradation({'mtf': mtf}, 2, Radiometry.from_options(None))
    low, _ = sensor(torch.from_numpy(bands[None]).double(), DegradationRNG(0, 'cpu'))
    return low[0].numpy()


def wald_pair(reference: np.ndarray, coarse: np.ndarray, mtf: float = WALD_MTF) -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr)``, each (R + T, h, w) on the coarse grid, from ``reference`` (R, 2h, 2w) and ``coarse`` (T, h, w)."""
    if reference.shape[1:] != (2 * coarse.shape[1], 2 * coarse.shape[2]):
        raise SegSRError(f'the reference bands are {reference.shape[2]} x {reference.shape[1]}, not twice the '
                         f'{coarse.shape[2]} x {coarse.shape[1]} of the coarse bands; give bands of 10 m and 20 m')
    if min(coarse.shape[1:]) % 2 or min(coarse.shape[1:]) < 8:
        raise SegSRError(f'the coarse bands are {coarse.shape[2]} x {coarse.shape[1]}: the Wald pairs need an even '
                         'size of at least 8 pixels')
    reference_low = halve(reference, mtf)
    coarse_back = imresize(halve(coarse, mtf).transpose(1, 2, 0), 2).transpose(2, 0, 1)
    lr = np.concatenate([reference_low, coarse_back]).astype(np.float32)
    hr = np.concatenate([reference_low, coarse]).astype(np.float32)
    return lr, hr


def read_reflectance(product: Product, bands: tuple[str, ...]) -> tuple[np.ndarray, Affine, object]:
    """(C, H, W) reflectance of ``bands`` (one resolution), with their grid's transform and CRS."""
    source = ProductSource(ProductInput(product.path, bands))
    try:
        raw = source.read(list(range(len(bands))), 0, source.height, 0, source.width).astype(np.float64)
        transform, crs = source.dataset.transform, source.dataset.crs
    finally:
        source.close()
    calibration = product.calibration(list(bands))
    return raw * calibration.scale[:, None, None] + calibration.offset[:, None, None], transform, crs


def write_reflectance(path: Path, values: np.ndarray, transform: Affine, crs, names: tuple[str, ...],
                      tags: dict) -> None:
    """Reflectance as an L2A product's DNs, with the calibration as GDAL scale/offset and band names set."""
    count = values.shape[0]
    profile = {'driver': 'GTiff', 'height': values.shape[1], 'width': values.shape[2], 'count': count,
               'dtype': 'uint16', 'crs': crs, 'transform': transform, 'compress': 'deflate', 'nodata': 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial, rasterio.open(partial, 'w', **profile) as dataset:
        dataset.write(to_digital_numbers(values, PAIR_BASELINE))
        dataset.scales = [1 / QUANTIFICATION] * count
        dataset.offsets = [baseline_offset(PAIR_BASELINE) / QUANTIFICATION] * count
        for index, name in enumerate(names, start=1):
            dataset.set_band_description(index, name)
        dataset.update_tags(**tags)


def write_wald_pairs(products: list[Path], out: Path, mtf: float = WALD_MTF,
                     reference: tuple[str, ...] = REFERENCE_BANDS,
                     target: tuple[str, ...] = TARGET_BANDS) -> list[Path]:
    """``out/hr/<product>.tif`` and ``out/lr/<product>.tif`` for each product; returns the HR files. A pair file
    that already exists is never replaced."""
    written = []
    for path in products:
        product = Product(path)
        taken = [file for file in (out / 'lr' / f'{product.name}.tif', out / 'hr' / f'{product.name}.tif')
                 if file.exists()]
        if taken:
            raise SegSRError(f'{taken[0]} already exists; give a new --out folder or remove the old pairs first')
        fine, _, _ = read_reflectance(product, reference)
        coarse, transform, crs = read_reflectance(product, target)
        lr, hr = wald_pair(fine, coarse, mtf)
        names = (*reference, *target)
        tags = {'S2_PRODUCT': product.name, 'S2_BANDS': ','.join(names), 'WALD_MTF': str(mtf)}
        write_reflectance(out / 'lr' / f'{product.name}.tif', lr, transform, crs, names, tags)
        write_reflectance(out / 'hr' / f'{product.name}.tif', hr, transform, crs, names, tags)
        written.append(out / 'hr' / f'{product.name}.tif')
    return written
