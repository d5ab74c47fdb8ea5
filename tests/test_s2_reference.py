"""The Sentinel-2 reference network: 20 m bands to 10 m with the 10 m bands as reference, trained by the Wald
protocol on products laid out like real ones, and run on a product (folder and zip) in one command."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from basicsr.archs import build_network
from conftest import write_yaml
from raster_fakes import contract_toy_checkpoint, output_reflectance
from s2_products import make_product, zip_product

from scripts.make_s2_wald_pairs import main as wald_main
from segsr.data.s2_wald import REFERENCE_BANDS, TARGET_BANDS, wald_pair, write_wald_pairs
from segsr.infer import main as infer_main
from segsr.radiometry.contract import Radiometry
from segsr.training import main as train_main
from segsr.utils.errors import SegSRError
from segsr.weights.card_formats import read_card

ALL_BANDS = ','.join((*REFERENCE_BANDS, *TARGET_BANDS))
TINY = {'type': 'S2ReferenceNet', 'num_in_ch': 10, 'num_target': 6, 'num_feat': 8, 'num_block': 1, 'upscale': 1}


def guided(clip_file: Path, **backbone) -> dict:
    """GuidedS2Reference on a tiny S2ReferenceNet: CLIP sees B04, B03, B02, the stack's first three bands."""
    return {'type': 'GuidedS2Reference', 'upscale': 1,
            'backbone': {'num_in_ch': 10, 'num_target': 6, 'num_feat': 8, 'num_block': 2, **backbone},
            'sfem': {'model': 'segsr-tiny-vit', 'pretrained': str(clip_file), 'quick_gelu': False,
                     'rgb_bands': [1, 2, 3], 'display_range': [0.0, 0.5],
                     'lora': {'rank': 2, 'alpha': 2, 'dropout': 0.0}},
            'slm': {'num_local': 1, 'num_heads': 4}, 'lmm': {'hidden': 8, 'norm': 'none', 'zero_init': True}}


def test_the_network_starts_as_its_input_and_passes_the_reference_through():
    network = build_network(dict(TINY))
    stack = torch.rand(2, 10, 12, 12)
    assert torch.equal(network(stack), stack)  # a zero residual at first: the resampled input
    torch.nn.init.normal_(network.tail.weight)
    out = network(stack)
    assert torch.equal(out[:, :4], stack[:, :4]) and not torch.allclose(out[:, 4:], stack[:, 4:])


def test_the_stage_hook_sees_each_run_of_blocks_and_leaves_the_output_as_it_was():
    network = build_network({**TINY, 'num_block': 4, 'num_stages': 2})
    torch.nn.init.normal_(network.tail.weight, std=0.1)
    stack, seen = torch.rand(1, 10, 12, 12), []
    hooked = network(stack, stage_hook=lambda stage, feat: seen.append((stage, feat.shape[1])) or feat)
    assert seen == [(0, 8), (1, 8)] and network.network_info.num_stages == 2
    assert torch.equal(hooked, network(stack))


def test_the_guided_network_starts_as_its_input_and_the_guidance_reaches_the_coarse_bands(clip_file):
    network = build_network(guided(clip_file))
    assert network.network_info.scale == 1 and network.network_info.map_stages == (1, 1)
    stack = torch.rand(2, 10, 24, 20)
    out, maps = network(stack, return_maps=True)
    assert torch.equal(out, stack), 'zero tail and zero-init LMMs: the resampled input'
    assert [tuple(m.shape) for m in maps] == [(2, 1, 24, 20)] * 2, 'one map per stage on the stack\'s grid'
    torch.nn.init.normal_(network.backbone.tail.weight, std=0.1)
    unguided = network(stack)
    for lmm in network.lmm:
        torch.nn.init.normal_(lmm.beta.weight, std=0.1)
    out = network(stack)
    assert torch.equal(out[:, :4], stack[:, :4]), 'the reference bands still pass through exactly'
    assert not torch.allclose(out[:, 4:], unguided[:, 4:]), 'the modulation changes the sharpened bands'
    brighter = stack.clone()
    brighter[:, :3] *= 1.5  # what CLIP sees (B04, B03, B02) changes, so the guidance does
    assert not torch.allclose(network(brighter, return_maps=True)[1][0], maps[0])


def test_guidance_on_one_grid_is_only_for_networks_that_work_on_one(clip_file):
    with pytest.raises(SegSRError, match='HAT upscale 1 is not supported'):
        build_network({'type': 'SEGSR', 'upscale': 1, 'backbone': {'type': 'HAT'}, 'sfem': guided(clip_file)['sfem']})
    with pytest.raises(SegSRError, match='upscale must be 1'):
        build_network({**guided(clip_file), 'upscale': 2})


@pytest.mark.parametrize('options, words', [({'upscale': 2}, 'upscale must be 1'),
                                             ({'num_target': 10}, '0 < num_target < num_in_ch')])
def test_a_network_that_cannot_work_is_one_line(options, words):
    with pytest.raises(SegSRError, match=words):
        build_network({**TINY, **options})


def test_wald_pairs_degrade_both_resolutions_by_two():
    rng = np.random.default_rng(0)
    fine, coarse = rng.uniform(0.05, 0.5, (4, 32, 32)), rng.uniform(0.05, 0.5, (6, 16, 16))
    lr, hr = wald_pair(fine, coarse)
    assert lr.shape == hr.shape == (10, 16, 16)
    assert np.array_equal(lr[:4], hr[:4]), 'the reference bands are the same in input and target'
    assert np.allclose(hr[4:], coarse, atol=1e-6), 'the target is the coarse bands as the product holds them'
    assert np.abs(lr[4:] - coarse).mean() > 0.01, 'the input lost the detail of a halving'
    assert abs(hr[:4].mean() - fine.mean()) < 0.01, 'a PSF keeps the mean'
    with pytest.raises(SegSRError, match='not twice'):
        wald_pair(fine[:, :30], coarse)


def train_options(pairs: Path, name: str) -> dict:
    dataset = {'type': 'RasterDataset', 'bands': list(range(1, 11))}
    return {
        'name': name, 'model_type': 'SegSRModel', 'scale': 1, 'num_gpu': 0, 'manual_seed': 0,
        'radiometry': {'from_metadata': True, 'range': [0.0, 1.0]},
        'datasets': {'train': {**dataset, 'name': 'wald_train', 'dataroot_gt': str(pairs / 'hr'),
                               'dataroot_lq': str(pairs / 'lr'), 'gt_size': 16, 'use_hflip': True, 'use_rot': True,
                               'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 2}},
        'network_g': dict(TINY),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'total_iter': 2, 'warmup_iter': -1,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'val_freq': None},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
    }


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
@pytest.mark.parametrize('kind, zipped', [('plain', False), ('guided', True)])
def test_trained_by_wald_pairs_of_products_it_brings_every_band_to_10_m_in_one_command(tmp_path, clip_file, kind,
                                                                                        zipped):
    products = [make_product(tmp_path / 'products', seed=seed) for seed in (0, 1)]
    hr_files = write_wald_pairs(products, tmp_path / 'wald')
    with rasterio.open(hr_files[0]) as pair, rasterio.open(next(products[0].rglob('*_B05_20m.jp2'))) as band:
        assert pair.count == 10 and pair.descriptions == (*REFERENCE_BANDS, *TARGET_BANDS)
        assert pair.res == band.res == (20.0, 20.0) and pair.transform == band.transform
        assert np.array_equal(pair.read(5), band.read(1)), 'the target B05 is the product\'s own'
    options = train_options(tmp_path / 'wald', 'wald')
    if kind == 'guided':
        options['network_g'] = guided(clip_file, num_block=1)
    train_main(['-opt', str(write_yaml(tmp_path / 'wald.yml', options)), '--root', str(tmp_path)])
    weights = tmp_path / 'experiments' / 'wald' / 'models' / 'net_g_latest.safetensors'
    card = read_card(weights)
    assert card['input']['bands'] == card['output']['bands'] == [*REFERENCE_BANDS, *TARGET_BANDS], \
        'the card names the bands as the pairs do'

    product = zip_product(products[1]) if zipped else products[1]
    named = ['--bands', ALL_BANDS] if kind == 'plain' else []  # else the bands the card names
    infer_main(['--weights', str(weights), '--input', str(product), '--output', str(tmp_path / 'out'),
                *named, '--resample', '--device', 'cpu'])
    (output,) = (tmp_path / 'out').glob('*_T33UUP_*[0-9].tif')
    with rasterio.open(output) as result, rasterio.open(next(products[1].rglob('*_B04_10m.jp2'))) as red:
        assert result.count == 10 and result.res == (10.0, 10.0) and result.shape == red.shape
        assert result.descriptions == (*REFERENCE_BANDS, *TARGET_BANDS)
        assert np.array_equal(result.read(1), red.read(1)), 'the 10 m reference bands pass through exactly'
        assert result.tags()['S2_BANDS'] == ALL_BANDS
    assert (tmp_path / 'out' / f'{output.stem}_SCL.tif').is_file()
    if kind == 'plain':
        chained_to_2_5_m(output, tmp_path)


def chained_to_2_5_m(ten_metre: Path, tmp_path: Path) -> None:
    """Every band at 10 m goes on through a x4 network of ten bands, under the calibration the file carries."""
    contract = Radiometry.from_options({'from_metadata': True, 'range': [0.0, 1.0]}, list(range(1, 11)))
    weights = contract_toy_checkpoint(tmp_path / 'x4.pth', contract.to_dict(), channels=10, upscale=4)
    infer_main(['--weights', str(weights), '--input', str(ten_metre), '--output', str(tmp_path / 'x4'),
                '--device', 'cpu'])
    fine = tmp_path / 'x4' / ten_metre.name
    with rasterio.open(fine) as result, rasterio.open(ten_metre) as source:
        assert result.count == 10 and result.res == (2.5, 2.5) and result.descriptions == source.descriptions
    source = output_reflectance(ten_metre)
    coarse = output_reflectance(fine).reshape(10, source.shape[1], 4, source.shape[2], 4).mean(axis=(2, 4))
    assert np.abs(coarse - source).mean() < 0.01, 'reflectance survives the chain'


def test_wald_pairs_of_nothing_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        wald_main([str(tmp_path), '--out', str(tmp_path / 'wald')])
    assert str(stop.value.code).startswith('error: no Sentinel-2 products in')
    assert not (tmp_path / 'wald').exists()


def test_a_damaged_product_is_named_and_the_others_still_get_their_pairs(tmp_path, capsys):
    good = make_product(tmp_path / 'products', seed=0)
    damaged = zip_product(make_product(tmp_path / 'products', seed=1), remove=True)
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(SystemExit) as stop:
        wald_main([str(tmp_path / 'products'), '--out', str(tmp_path / 'wald')])
    assert str(stop.value.code) == 'error: 1 of 2 products failed (named above); fix or remove them'
    assert f'{damaged} is not a readable zip' in capsys.readouterr().err
    written = tmp_path / 'wald' / 'hr' / f'{good.name.removesuffix(".SAFE")}.tif'
    assert list((tmp_path / 'wald' / 'hr').iterdir()) == [written]

    before = written.read_bytes()
    with pytest.raises(SystemExit):
        wald_main([str(good), '--out', str(tmp_path / 'wald')])
    assert 'already exists; give a new --out folder' in capsys.readouterr().err
    assert written.read_bytes() == before, 'pairs of an earlier run are never replaced'
