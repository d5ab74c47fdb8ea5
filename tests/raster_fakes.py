"""Rasters the inference tests write with rasterio, and a near-identity network that keeps values where they were."""

from pathlib import Path

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from rasterio.transform import Affine

import segsr  # noqa: F401  (patches basicsr before the registry is imported)

TRANSFORM = Affine.translation(500000, 5000000) @ Affine.scale(10, -10)


class BicubicToySR(torch.nn.Module):
    """Bicubic upscale plus a small random residual: like a trained SR network, it returns values near its
    input's, overshooting a little at edges (so outputs leave [0, 1] where the input is near its bounds)."""

    def __init__(self, upscale: int = 2, num_in_ch: int = 3):
        super().__init__()
        self.upscale = upscale
        self.residual = torch.nn.Conv2d(num_in_ch, num_in_ch, 3, padding=1, groups=num_in_ch)  # bands stay apart
        torch.nn.init.normal_(self.residual.weight, std=0.002)
        torch.nn.init.zeros_(self.residual.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
        return up + F.interpolate(self.residual(x), scale_factor=self.upscale, mode='nearest')


class CurvedToySR(BicubicToySR):
    """The toy network followed by a fixed curve: like any trained network, not equivariant to a rescaled input,
    so two different maps into it give two different outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = super().forward(x)
        return up + 0.2 * torch.sin(3 * up)


def register_toy() -> None:
    from basicsr.utils.registry import ARCH_REGISTRY

    for network in (BicubicToySR, CurvedToySR):
        if network.__name__ not in ARCH_REGISTRY:
            ARCH_REGISTRY.register()(network)


def toy_checkpoint(path: Path, channels: int = 3, upscale: int = 2) -> Path:
    register_toy()
    torch.manual_seed(0)
    options = {'type': 'BicubicToySR', 'upscale': upscale, 'num_in_ch': channels}
    network = BicubicToySR(upscale, channels)
    torch.save({'params': network.state_dict(), 'params_ema': network.state_dict(), 'network_g': options}, path)
    return path


def contract_toy_checkpoint(path: Path, contract: dict, channels: int = 3, upscale: int = 2) -> Path:
    """The toy network with a stored radiometric contract (as :meth:`Radiometry.to_dict` writes it, or as a
    hand-edited file holds it), as training stores one."""
    register_toy()
    torch.manual_seed(0)
    torch.save({'params_ema': BicubicToySR(upscale, channels).state_dict(), 'radiometry': contract,
                'network_g': {'type': 'BicubicToySR', 'upscale': upscale, 'num_in_ch': channels}}, path)
    return path


def output_reflectance(path: Path) -> np.ndarray:
    """A raster's values through its own GDAL scales and offsets."""
    with rasterio.open(path) as dataset:
        raw = dataset.read().astype(np.float64)
        return raw * np.array(dataset.scales)[:, None, None] + np.array(dataset.offsets)[:, None, None]


def write_raster(path: Path, data: np.ndarray, nodata: float | None = None, **extra) -> Path:
    """A georeferenced GeoTIFF of ``(C, H, W)`` data (10 m pixels, UTM 33N)."""
    profile = {
        'driver': 'GTiff', 'height': data.shape[1], 'width': data.shape[2], 'count': data.shape[0],
        'dtype': data.dtype.name, 'crs': 'EPSG:32633', 'transform': TRANSFORM, 'nodata': nodata, **extra,
    }
    with rasterio.open(path, 'w', **profile) as dataset:
        dataset.write(data)
    return path


def smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth field in [0, 1] with a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    field = 0.5 + 0.3 * np.sin(x / 6 + seed) * np.cos(y / 5 - seed)
    return field + rng.normal(0, 0.02, (height, width))


def bright_spot(height: int, width: int, row: int, col: int, sigma: float = 2.0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.exp(-((y - row) ** 2 + (x - col) ** 2) / (2 * sigma**2))


def reflectance_with_bright_roof(size: int = 64) -> np.ndarray:
    """uint16 reflectance ~1000..5000 and one small roof at 37873, far above the 99.5th percentile."""
    base = 1000 + 4000 * smooth(size, size)
    roof = bright_spot(size, size, size // 3, size // 3)
    return np.rint(base + (37873 - base) * roof).astype(np.uint16)[None]


def dem_with_negatives(size: int = 64) -> np.ndarray:
    """A float32 elevation model from -1 m (below the datum) to 88 m."""
    y, x = np.mgrid[0:size, 0:size]
    ramp = (x + y) / (2 * (size - 1))
    return (-1 + 89 * ramp + 0.5 * np.sin(x / 3)).astype(np.float32)[None]


def vrt_of(tiff: Path, vrt: Path, bands: int, width: int, height: int, dtype: str = 'UInt16') -> Path:
    """A VRT that exposes every band of ``tiff`` unchanged (what gdalbuildvrt writes for one file)."""
    sources = ''.join(
        f'<VRTRasterBand dataType="{dtype}" band="{b}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">{tiff.name}</SourceFilename><SourceBand>{b}</SourceBand>'
        f'</SimpleSource></VRTRasterBand>'
        for b in range(1, bands + 1)
    )
    t = TRANSFORM
    vrt.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>EPSG:32633</SRS>'
        f'<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>{sources}</VRTDataset>'
    )
    return vrt
