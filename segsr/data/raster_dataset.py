"""Rasters of any dtype and band count (GeoTIFF, VRT, JP2), read window by window, in the contract's values."""

import random
from pathlib import Path

import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from segsr.data.file_check import modcrop_pair_problem
from segsr.data.geotiff import RasterSource
from segsr.data.product_source import ProductSource, check_product_contract
from segsr.data.raster_files import (
    RasterWindow,
    list_rasters,
    pair_by_georeference,
    raster_header,
    read_window_list,
    whole,
)
from segsr.degradations.bicubic import bicubic_downscale
from segsr.options.degradation import degradation_names
from segsr.radiometry.contract import BandStretch, Radiometry, calibration_from_metadata
from segsr.radiometry.nodata import fill_from_nearest_valid
from segsr.sentinel2.product import band_names, is_product
from segsr.sentinel2.request import ProductInput
from segsr.utils.errors import SegSRError

DEFAULT_NODATA_SHARE = 0.1
TRAIN_DRAWS = 10
"""Training crops drawn per item until one has little enough nodata; the cleanest is kept otherwise."""


@DATASET_REGISTRY.register()
class RasterDataset(data.Dataset):
    """Windows of rasters in the radiometric contract's network values; see docs/rasters.md.

    Options: dataroot_gt (folder, glob or list file), dataroot_lq (optional LR rasters, paired by
    georeference; without them the LR is MATLAB-style bicubic of the HR window, in float), meta_info_file
    (window list; without it every raster is one block/window), bands (1-based, network channel order),
    gt_size, use_hflip, use_rot, nodata_max_share, scale, phase, ``product_bands`` (Sentinel-2 products: the
    band names to stack, e.g. [B04, B03, B02, B08], as segsr-infer --bands stacks them) with ``resample``,
    and ``contract`` (set from the option
    file's ``radiometry`` section or the checkpoint). Training draws ``gt_size`` crops inside the listed
    blocks; validation and test use the listed windows as they are. Each item has a ``mask`` (1 where the
    HR pixel holds data) that the loss and the metrics respect.
    """

    pair_size_problem = staticmethod(modcrop_pair_problem)
    read_header = staticmethod(raster_header)

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.scale = int(opt['scale'])
        self.contract = Radiometry.of_options(opt)
        bands = opt.get('bands') or self.contract.bands
        if self.contract.bands and bands and tuple(bands) != self.contract.bands:
            raise SegSRError(f'bands {list(bands)} differ from the radiometric contract\'s '
                             f'{list(self.contract.bands)}; use the bands the network was trained on')
        self.hr_only = self.is_train and degradation_names(opt) != ['bicubic']  # the model degrades on its device
        self.max_nodata = float(opt.get('nodata_max_share', DEFAULT_NODATA_SHARE))
        if not 0 <= self.max_nodata < 1:
            raise SegSRError(f'nodata_max_share {self.max_nodata} must lie in [0, 1)')
        if self.is_train and opt['gt_size'] % self.scale:
            raise SegSRError(f'gt_size {opt["gt_size"]} is not a multiple of scale {self.scale}; change gt_size')
        root = opt['dataroot_gt']
        if opt.get('meta_info_file'):
            listed = read_window_list(opt['meta_info_file'], root)
        else:
            listed = [RasterWindow(path, 0, 0, -1, -1) for path in list_rasters(root)]
        hr_paths = list(dict.fromkeys(window.path for window in listed))
        self.lr_of = pair_by_georeference(hr_paths, list_rasters(opt['dataroot_lq']), self.scale) \
            if opt.get('dataroot_lq') else {}
        self.band_indices: list[int] = []
        self.sources: dict[str, RasterSource] = {}
        self.stretches: dict[str, BandStretch] = {}
        sizes = {path: self._describe_file(path, bands) for path in [*hr_paths, *self.lr_of.values()]}
        windows = [whole(window, *sizes[window.path]) for window in listed]
        misaligned = next((w for w in windows if w.path in self.lr_of and (w.col % self.scale or w.row % self.scale)),
                          None)
        if misaligned:
            raise SegSRError(f'window {misaligned.line()} does not start on the LR grid (a multiple of scale '
                             f'{self.scale}); regenerate the list with scripts/make_raster_splits.py --scale')
        small = next((w for w in windows if min(w.width, w.height) < opt['gt_size']), None) if self.is_train else None
        if small:
            raise SegSRError(f'block {small.line()} is smaller than gt_size {opt["gt_size"]}; lower gt_size or cut '
                             'larger blocks with scripts/make_raster_splits.py')
        self.windows = windows if self.is_train else [w for w in windows if self._clean_enough(w)]
        dropped = len(windows) - len(self.windows)
        if dropped:
            get_root_logger().info(f'{opt.get("name", "rasters")}: {dropped} of {len(windows)} windows left out, '
                                   f'more than {self.max_nodata:.0%} nodata (nodata_max_share)')
        self.paths = [{'gt_path': path, **({'lq_path': self.lr_of[path]} if path in self.lr_of else {})}
                      for path in hr_paths]
        self.close()  # loader workers open their own

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
        self.sources.clear()

    @property
    def is_train(self) -> bool:
        return self.opt.get('phase') == 'train'

    def _describe_file(self, path: str, bands: list[int] | None) -> tuple[int, int]:
        """Band selection, dtype and calibration of one raster; its size. All rasters share the band layout."""
        source = self._open(path)
        try:
            indices = [band - 1 for band in bands] if bands else list(range(source.band_count))
            if any(not 0 <= index < source.band_count for index in indices):
                raise SegSRError(f'bands {bands} ask for a band {path} does not have ({source.band_count} bands); '
                                 'fix bands')
            if self.band_indices and len(indices) != len(self.band_indices):
                raise SegSRError(f'{path} has {source.band_count} bands, other rasters {len(self.band_indices)}; '
                                 'set bands, or give rasters of one band layout')
            self.band_indices = indices
            if self.contract.is_default and source.dtype != np.uint8:
                raise SegSRError(f'{path} holds {source.dtype} values, which the 8-bit default (0..255 -> 0..1) '
                                 'does not fit; add a radiometry section to the options (see docs/rasters.md), or '
                                 'test weights that store one (check path.pretrain_network_g)')
            if isinstance(source, ProductSource):
                check_product_contract(source, indices, self.contract)
            calibration = self.contract.calibration(calibration_from_metadata(source.dataset, indices), path)
            self.stretches[path] = self.contract.stretch(calibration, len(indices))
            return source.width, source.height
        finally:
            source.close()

    def _source(self, path: str) -> RasterSource:
        """Rasters opened lazily, once per loading process (a forked worker opens its own)."""
        if path not in self.sources:
            self.sources[path] = self._open(path)
        return self.sources[path]

    def _open(self, path: str) -> RasterSource:
        """A raster, or a Sentinel-2 product as the stack of its ``product_bands``."""
        if is_product(path):
            if not self.opt.get('product_bands'):
                raise SegSRError(f'{path} is a Sentinel-2 product: name the bands to stack with product_bands, '
                                 'e.g. product_bands: [B04, B03, B02, B08]')
            names = band_names(','.join(map(str, self.opt['product_bands'])))
            return ProductSource(ProductInput(Path(path), names, bool(self.opt.get('resample', False))))
        return RasterSource(path)

    def _valid(self, path: str, row: int, col: int, height: int, width: int) -> np.ndarray:
        """``(h, w)``: where every band holds data, so the loss and the metrics see whole spectra only."""
        valid = self._source(path).read_valid(self.band_indices, row, row + height, col, col + width)
        return np.ones((height, width), bool) if valid is None else valid.all(axis=0)

    def _clean_enough(self, window: RasterWindow) -> bool:
        valid = self._valid(window.path, window.row, window.col, window.height, window.width)
        return 1 - valid.mean() <= self.max_nodata

    def _draw_crop(self, block: RasterWindow) -> tuple[RasterWindow, np.ndarray]:
        """A random ``gt_size`` crop of the block on the LR grid, redrawn while it holds too much nodata; with
        its validity."""
        size, scale = int(self.opt['gt_size']), self.scale
        best, best_valid, best_share = None, None, 2.0
        for _ in range(TRAIN_DRAWS):
            col = block.col + random.randint(0, (block.width - size) // scale) * scale
            row = block.row + random.randint(0, (block.height - size) // scale) * scale
            valid = self._valid(block.path, row, col, size, size)
            share = 1 - valid.mean()
            if share < best_share:
                best, best_valid, best_share = RasterWindow(block.path, col, row, size, size), valid, share
            if share <= self.max_nodata:
                break
        return best, best_valid

    def _read(self, path: str, row: int, col: int, height: int, width: int,
              valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, C)`` network values with nodata filled, and the ``(H, W)`` validity (read unless given)."""
        raw = self._source(path).read(self.band_indices, row, row + height, col, col + width)
        valid = self._valid(path, row, col, height, width) if valid is None else valid
        values = fill_from_nearest_valid(self.stretches[path].to_unit(raw), valid)
        return np.ascontiguousarray(values.transpose(1, 2, 0)), valid

    def __getitem__(self, index: int) -> dict:
        window, valid = self.windows[index], None
        if self.is_train:
            window, valid = self._draw_crop(window)
        scale = self.scale
        height, width = window.height // scale * scale, window.width // scale * scale
        gt, valid = self._read(window.path, window.row, window.col, height, width, valid)
        images = [gt, valid[..., None].astype(np.float32)]
        lr_path = self.lr_of.get(window.path)
        if lr_path:
            images.append(self._read(lr_path, window.row // scale, window.col // scale,
                                     height // scale, width // scale)[0])
        if self.is_train:
            images = augment(images, self.opt.get('use_hflip', True), self.opt.get('use_rot', True))
        gt_tensor, mask = (torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) for image in images[:2])
        name = f'{window.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]}_{window.col}_{window.row}'
        item = {'gt': gt_tensor, 'mask': mask, 'lq_path': lr_path or window.path, 'gt_path': window.path, 'name': name}
        if not self.hr_only:
            lq = images[2] if lr_path else bicubic_downscale(images[0], scale)
            item['lq'] = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1)))
        return item

    def __len__(self) -> int:
        return len(self.windows)
