"""RasterDataset: windows in the contract's values, nodata masked, pairs matched by georeference, checked files,
and spatially disjoint splits."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from basicsr.utils.matlab_functions import imresize
from conftest import TINY_HAT, write_yaml
from raster_fakes import TRANSFORM, write_raster
from raster_scenes import l2a_scene, scaled_scene
from rasterio.transform import Affine

from segsr import evaluation
from segsr.data.loaders import build_checked_dataset
from segsr.data.raster_files import read_window_list
from segsr.data.raster_splits import SplitPlan, make_raster_splits
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

CONTRACT = Radiometry.from_options({'from_metadata': True, 'range': [0.0, 0.6]}, [1, 2, 3, 4]).to_dict()


def options_of(root: Path, phase: str = 'val', **extra) -> dict:
    return {'name': 'rasters', 'type': 'RasterDataset', 'dataroot_gt': str(root), 'scale': 2, 'phase': phase,
            'contract': CONTRACT, **extra}


def network_values(path: Path, rows: slice, cols: slice) -> np.ndarray:
    """What the contract makes of the L2A DNs, computed here with the L2A formula itself."""
    with rasterio.open(path) as dataset:
        dn = dataset.read().astype(np.float64)[:, rows, cols]
    return ((dn - 1000) / 10000 - 0.0) / 0.6


def test_hr_only_items_hold_contract_values_and_float_bicubic_lr(tmp_path):
    scene = l2a_scene(tmp_path / 'a.tif', size=32)
    item = build_checked_dataset(options_of(tmp_path), 'val').dataset[0]
    gt = network_values(scene, slice(None), slice(None))
    np.testing.assert_allclose(item['gt'].numpy(), gt, atol=1e-6)
    expected_lr = imresize(gt.transpose(1, 2, 0), 0.5).transpose(2, 0, 1)
    np.testing.assert_allclose(item['lq'].numpy(), expected_lr, atol=1e-5)
    assert item['mask'].shape == (1, 32, 32) and item['mask'].min() == 1


def test_nodata_is_masked_filled_and_heavy_windows_are_not_drawn(tmp_path):
    l2a_scene(tmp_path / 'a.tif', size=32, nodata_corner=10)
    (tmp_path / 'list.txt').write_text('a.tif 0 0 16 16\na.tif 16 16 16 16\n')
    dataset = build_checked_dataset(options_of(tmp_path, meta_info_file=str(tmp_path / 'list.txt'),
                                            nodata_max_share=0.5), 'val').dataset
    assert len(dataset) == 2
    item = dataset[0]
    mask = item['mask'][0].numpy()
    assert (mask[:10, :10] == 0).all() and mask[10:].all() and mask[:, 10:].all()
    raw_fill = (0 - 1000) / 10000 / 0.6
    assert item['gt'].numpy().min() > raw_fill + 0.1, 'nodata is filled from valid neighbours, not its fill value'
    strict = build_checked_dataset(options_of(tmp_path, meta_info_file=str(tmp_path / 'list.txt'),
                                           nodata_max_share=0.2), 'val').dataset
    assert len(strict) == 1 and strict.windows[0].col == 16, 'the window 39 % nodata is left out'


def lr_raster(path: Path, hr: Path, transform=None, crs: str = 'EPSG:32633') -> Path:
    """The HR raster's DNs block-averaged 2x2, on a grid of 20 m pixels over the same extent."""
    with rasterio.open(hr) as dataset:
        dn = dataset.read().astype(np.float64)
        tags = dataset.tags(), [dataset.tags(b) for b in range(1, dataset.count + 1)]
    lr = dn.reshape(dn.shape[0], dn.shape[1] // 2, 2, dn.shape[2] // 2, 2).mean(axis=(2, 4))
    write_raster(path, np.rint(lr).astype(np.uint16), transform=transform or TRANSFORM @ Affine.scale(2), crs=crs)
    with rasterio.open(path, 'r+') as dataset:
        dataset.update_tags(**tags[0])
        for band, band_tags in enumerate(tags[1], start=1):
            dataset.update_tags(band, **band_tags)
    return path


def test_pairs_are_matched_by_georeference(tmp_path):
    (tmp_path / 'hr').mkdir()
    (tmp_path / 'lr').mkdir()
    hr_a = l2a_scene(tmp_path / 'hr' / 'a.tif', size=32, seed=1)
    elsewhere = TRANSFORM @ Affine.translation(100, 0)
    hr_b = l2a_scene(tmp_path / 'hr' / 'b.tif', size=32, seed=2, transform=elsewhere)
    # named crosswise: only the georeference can pair them
    lr_raster(tmp_path / 'lr' / 'b.tif', hr_a)
    lr_raster(tmp_path / 'lr' / 'a.tif', hr_b, transform=elsewhere @ Affine.scale(2))
    dataset = build_checked_dataset(options_of(tmp_path / 'hr', dataroot_lq=str(tmp_path / 'lr')), 'val').dataset
    assert dataset.lr_of == {str(hr_a): str(tmp_path / 'lr' / 'b.tif'), str(hr_b): str(tmp_path / 'lr' / 'a.tif')}
    item = dataset[0]
    assert item['gt_path'] == str(hr_a)
    np.testing.assert_allclose(item['lq'].numpy(), network_values(tmp_path / 'lr' / 'b.tif', slice(None), slice(None)),
                               atol=1e-6)


@pytest.mark.parametrize(('lr_options', 'message'), [
    ({'crs': 'EPSG:32634'}, 'is in EPSG:32634 but'),
    ({'transform': TRANSFORM @ Affine.scale(3)}, r'times those of .* not scale 2'),
    ({'transform': TRANSFORM @ Affine.translation(40, 0) @ Affine.scale(2)}, 'covers'),
])
def test_mismatched_pairs_are_one_line(tmp_path, lr_options, message):
    (tmp_path / 'hr').mkdir()
    (tmp_path / 'lr').mkdir()
    hr = l2a_scene(tmp_path / 'hr' / 'a.tif', size=32)
    lr_raster(tmp_path / 'lr' / 'a.tif', hr, **lr_options)
    with pytest.raises(SegSRError, match=message) as error:
        build_checked_dataset(options_of(tmp_path / 'hr', dataroot_lq=str(tmp_path / 'lr')), 'val')
    assert '\n' not in str(error.value) and 'same CRS and extent' in str(error.value)


def test_bad_rasters_and_missing_radiometry_are_named_before_the_run(tmp_path):
    scene = scaled_scene(tmp_path / 'a.tif', bands=4, size=64)
    no_contract = {k: v for k, v in options_of(tmp_path).items() if k != 'contract'}
    with pytest.raises(SegSRError, match='uint16 values.*add a radiometry section'):
        build_checked_dataset(no_contract, 'val')
    with pytest.raises(SegSRError, match='uint16 values.*add a radiometry section'):
        build_checked_dataset({**no_contract, 'contract': Radiometry.from_options(None, [2, 1]).to_dict()}, 'val')
    with rasterio.open(scene) as dataset:
        profile = dataset.profile
    write_raster(tmp_path / 'b.tif', np.ones((4, 64, 64), np.uint16), tiled=True, blockxsize=16, blockysize=16)
    data = (tmp_path / 'b.tif').read_bytes()
    (tmp_path / 'b.tif').write_bytes(data[:len(data) // 2])
    assert profile['count'] == 4
    with pytest.raises(SegSRError, match=r'datasets.val: .*b.tif') as error:
        build_checked_dataset(options_of(tmp_path), 'val')
    assert '\n' not in str(error.value)


def test_splits_keep_a_gap_between_blocks_of_different_splits(tmp_path):
    scaled_scene(tmp_path / 'a.tif', bands=1, size=200)
    counts = make_raster_splits(str(tmp_path), tmp_path / 'splits', SplitPlan(40, 16, 16, (0.6, 0.2, 0.2), 3, 4))
    lists = {split: read_window_list(str(tmp_path / 'splits' / f'{split}.txt'), str(tmp_path))
             for split in ('train', 'val', 'test')}
    assert counts == {split: len(windows) for split, windows in lists.items()}
    assert counts['val'] and counts['test'] and counts['train']

    def gap(a, b) -> int:
        """Pixels between two rectangles (0 when they touch or overlap)."""
        dx = max(b.col - (a.col + a.width), a.col - (b.col + b.width), 0)
        dy = max(b.row - (a.row + a.height), a.row - (b.row + b.height), 0)
        return max(dx, dy)

    for first, second in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        assert min(gap(a, b) for a in lists[first] for b in lists[second]) >= 16
    assert all(w.col % 4 == 0 and w.row % 4 == 0 and w.width == 16 for w in lists['val'] + lists['test'])


def test_a_band_list_that_does_not_fit_the_network_stops_the_run_in_one_line(tmp_path):
    l2a_scene(tmp_path / 'a.tif', size=32)
    options = {'name': 'bands', 'model_type': 'HATModel', 'scale': 2, 'num_gpu': 0,
               'radiometry': {'from_metadata': True, 'range': [0, 1]},
               'datasets': {'test_1': {**options_of(tmp_path), 'bands': [1, 2, 3, 4]}},
               'network_g': {'type': 'HAT', 'upscale': 2, 'in_chans': 6, **TINY_HAT},
               'path': {'pretrain_network_g': str(tmp_path / 'none.pth')}}
    with pytest.raises(SystemExit) as error:
        evaluation.main(['-opt', str(write_yaml(tmp_path / 't.yml', options)), '--root', str(tmp_path)])
    assert 'bands [1, 2, 3, 4] feed 4 bands to network_g, which takes 6' in str(error.value)


def test_training_blocks_smaller_than_the_crop_are_refused_at_the_start(tmp_path):
    l2a_scene(tmp_path / 'a.tif', size=32)
    (tmp_path / 'train.txt').write_text('a.tif 0 0 16 16\n')
    with pytest.raises(SegSRError, match=r'block .*a.tif 0 0 16 16 is smaller than gt_size 24'):
        build_checked_dataset(options_of(tmp_path, 'train', meta_info_file=str(tmp_path / 'train.txt'), gt_size=24),
                              'train')


def test_training_crops_over_nodata_carry_one_mask_for_every_band(tmp_path):
    """GDAL masks nodata band by band; a training crop keeps one mask (a pixel counts where every band holds data),
    which flips and rotations move with the bands."""
    l2a_scene(tmp_path / 'a.tif', size=32, nodata_corner=12)
    with rasterio.open(tmp_path / 'a.tif', 'r+') as dataset:  # band 2 alone also lacks a stripe
        stripe = dataset.read(2)
        stripe[20:22] = 0
        dataset.write(stripe, 2)
    (tmp_path / 'train.txt').write_text('a.tif 0 0 32 32\n')
    dataset = build_checked_dataset(options_of(tmp_path, 'train', meta_info_file=str(tmp_path / 'train.txt'),
                                               gt_size=32, nodata_max_share=0.5), 'train').dataset
    for _ in range(4):
        item = dataset[0]
        mask = item['mask'].numpy()
        assert mask.shape == (1, 32, 32) and item['gt'].shape == (4, 32, 32)
        assert mask.sum() == 32 * 32 - 12 * 12 - 2 * 32  # the corner and the stripe do not overlap
