"""The two training/testing datasets and the class helper, on a small prepared dataset."""

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import rs_fakes
import torch

import segsr  # noqa: F401
from segsr.data.classes import class_from_name, image_class, load_manifest
from segsr.data.prepare import get_spec, prepare_dataset
from segsr.degradations.bicubic import make_lr_uint8
from segsr.utils.errors import SegSRError

SIZE = 50  # not a multiple of 3, 4 or 8: the GT must be cropped to LR * scale


@pytest.fixture(scope='module')
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('rs')
    members = rs_fakes.whu_rs19_members({'Airport': 5, 'Beach': 5})
    rs_fakes.build(root / 'src.zip', members, SIZE)
    spec = dataclasses.replace(get_spec('WHU-RS19'), size=SIZE)
    prepare_dataset(spec, root / 'src.zip', root / 'WHU-RS19', scales=(2, 3, 4), workers=1, progress=False)
    return root / 'WHU-RS19'


def build_dataset(opt: dict) -> torch.utils.data.Dataset:
    from basicsr.data import build_dataset as build  # basicsr only after segsr's compatibility patches

    return build(opt)


def on_the_fly(root: Path, phase: str = 'train', **extra) -> torch.utils.data.Dataset:
    opt = {'name': 'fly', 'type': 'RSOnTheFlyDataset', 'phase': phase, 'dataroot_gt': str(root / 'HR'),
           'gt_size': 24, 'use_hflip': True, 'use_rot': True, 'scale': 4, 'io_backend': {'type': 'disk'}, **extra}
    return build_dataset(opt)


def paired(root: Path, phase: str = 'train', scale: int = 4, lq: str = 'LR_x4', **extra) -> torch.utils.data.Dataset:
    opt = {'name': 'pair', 'type': 'RSPairedImageDataset', 'phase': phase, 'dataroot_gt': str(root / 'HR'),
           'dataroot_lq': str(root / lq), 'gt_size': 24, 'use_hflip': True, 'use_rot': True, 'scale': scale,
           'io_backend': {'type': 'disk'}, **extra}
    return build_dataset(opt)


def test_on_the_fly_training_items(prepared):
    dataset = on_the_fly(prepared)
    assert len(dataset) == 10
    item = dataset[0]
    assert item['gt'].shape == (3, 24, 24) and item['lq'].shape == (3, 6, 6)
    assert item['lq_path'] == item['gt_path'] == str(prepared / 'HR' / 'airport_01.png')
    assert item['class'] == 'Airport'


def test_on_the_fly_meta_info_file_selects_the_split(prepared):
    test_list = prepared / 'splits' / '80-10-10' / 'test.txt'
    dataset = on_the_fly(prepared, meta_info_file=str(test_list))
    assert [Path(p).name for p in dataset.paths] == test_list.read_text().split()


def test_quantize_lr_rounds_to_8_bit_levels(prepared):
    random.seed(0)
    exact = on_the_fly(prepared)[3]['lq']
    random.seed(0)
    quantized = on_the_fly(prepared, quantize_lr=True)[3]['lq']
    levels = quantized * 255
    assert torch.equal(levels, levels.round())
    assert not torch.equal(exact * 255, (exact * 255).round())
    assert (quantized - exact).abs().max() <= 0.5 / 255 + 1e-6


def test_quantized_on_the_fly_lr_equals_the_prepared_lr(prepared):
    """Training LR (quantize_lr) and test LR files come from the same degradation, bit for bit."""
    fly = on_the_fly(prepared, phase='val', quantize_lr=True)[2]
    pair = paired(prepared, phase='val')[2]
    assert fly['gt_path'] == pair['gt_path']
    assert torch.equal(fly['lq'], pair['lq']) and torch.equal(fly['gt'], pair['gt'])
    assert fly['gt'].shape == (3, 48, 48) and fly['lq'].shape == (3, 12, 12)


def test_paired_items_crop_gt_to_lr_times_scale(prepared):
    item = paired(prepared, phase='val', scale=3, lq='LR_x3')[0]
    assert item['gt'].shape == (3, 48, 48) and item['lq'].shape == (3, 16, 16)
    train = paired(prepared, phase='train', scale=3, lq='LR_x3')[7]
    assert train['gt'].shape == (3, 24, 24) and train['lq'].shape == (3, 8, 8)
    assert train['class'] == 'Beach'


def test_paired_size_mismatch_names_the_file_and_the_fix(prepared):
    dataset = paired(prepared, phase='val', scale=4, lq='LR_x2')
    with pytest.raises(SegSRError, match=r'LR_x2/airport_01\.png is 25x25 but .*needs 12x12; point dataroot_lq'):
        dataset[0]


def test_on_the_fly_rejects_bad_options(prepared, tmp_path):
    with pytest.raises(SegSRError, match='gt_size 25 is not a multiple of scale 4'):
        on_the_fly(prepared, gt_size=25)
    with pytest.raises(SegSRError, match='smaller than gt_size 64'):
        on_the_fly(prepared, gt_size=64)[0]
    (tmp_path / 'list.txt').write_text('nowhere.png\n')
    with pytest.raises(SegSRError, match='nowhere.png'):
        on_the_fly(prepared, meta_info_file=str(tmp_path / 'list.txt'))


def test_class_labels_come_from_the_manifest_or_the_name(prepared):
    manifest = load_manifest(prepared / 'HR')
    assert manifest is not None and manifest == load_manifest(prepared)
    assert image_class(prepared / 'LR_x4' / 'beach-03.png', manifest) == 'Beach'
    assert image_class('results/beach-03_SEGSR.png', None) == 'beach-03_SEGSR'
    assert image_class('somewhere/agricultural07.png', None) == 'agricultural'
    assert image_class('somewhere/agricultural07.png', manifest) == 'agricultural'
    assert class_from_name('airport_12.jpg') == 'airport' and class_from_name('beach-01.png') == 'beach'
    assert load_manifest(prepared.parent / 'nothing' / 'HR') is None


def test_prepared_lr_matches_the_degradation(prepared):
    import cv2

    hr = cv2.imread(str(prepared / 'HR' / 'airport_02.png'))
    lr = cv2.imread(str(prepared / 'LR_x3' / 'airport_02.png'))
    np.testing.assert_array_equal(lr, make_lr_uint8(hr, 3))
