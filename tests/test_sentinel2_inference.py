"""A Sentinel-2 product super-resolved in one command: named bands, its contract and SCL on the output grid."""

import numpy as np
import pytest
import rasterio
from raster_fakes import contract_toy_checkpoint, output_reflectance, toy_checkpoint
from s2_products import make_product, reflectance, scl_classes, zip_product

from segsr.infer import main as infer_main
from segsr.radiometry.contract import Radiometry

RGBN = 'B04,B03,B02,B08'
RUN = ['--tile', '32', '--overlap', '8', '--device', 'cpu']


@pytest.fixture(scope='module')
def toy4(tmp_path_factory):
    return toy_checkpoint(tmp_path_factory.mktemp('toy4') / 'toy4.pth', channels=4)


def contract_checkpoint(path, section: dict):
    """The toy network with a radiometric contract, as training stores it."""
    return contract_toy_checkpoint(path, Radiometry.from_options(section, [1, 2, 3, 4]).to_dict(), channels=4)


@pytest.mark.parametrize('zipped', [False, True])
def test_a_product_and_its_zip_super_resolve_in_one_command(toy4, tmp_path, zipped):
    product = make_product(tmp_path / 'in', 'L2A', '05.09')
    source = zip_product(product, remove=True) if zipped else product
    infer_main(['--weights', str(toy4), '--input', str(source), '--output', str(tmp_path / 'out'),
                '--bands', RGBN, *RUN])
    stem = product.name.removesuffix('.SAFE')
    with rasterio.open(tmp_path / 'out' / f'{stem}.tif') as dataset:
        assert (dataset.count, dataset.height, dataset.width) == (4, 96, 96)
        assert dataset.descriptions == tuple(RGBN.split(','))
        assert dataset.res == (5.0, 5.0)
        tags = dataset.tags()
        assert tags['S2_PROCESSING_BASELINE'] == '05.09' and tags['S2_PRODUCT'] == stem
        assert tags['S2_PRODUCT_URI'] == f'{stem}.SAFE' and tags['S2_BANDS'] == RGBN
    values = output_reflectance(tmp_path / 'out' / f'{stem}.tif')
    coarse = values[0].reshape(48, 2, 48, 2).mean(axis=(1, 3))
    assert np.abs(coarse - reflectance('B04', 10)).mean() < 0.01
    with rasterio.open(tmp_path / 'out' / f'{stem}_SCL.tif') as dataset:
        assert (dataset.height, dataset.width, dataset.res) == (96, 96, (5.0, 5.0))
        assert dataset.tags(1)['CLASS_9'] == 'cloud high probability'
        np.testing.assert_array_equal(dataset.read(1), scl_classes(20).repeat(4, axis=0).repeat(4, axis=1))


def test_both_baselines_give_the_same_reflectance_through_the_network(tmp_path):
    weights = contract_checkpoint(tmp_path / 'meta.pth', {'from_metadata': True, 'range': [0.0, 1.0]})
    folder = tmp_path / 'in'
    old, new = make_product(folder, 'L2A', '03.01'), make_product(folder, 'L2A', '05.09')  # one scene, two baselines
    infer_main(['--weights', str(weights), '--input', str(folder), '--output', str(tmp_path / 'out'),
                '--bands', RGBN, '--cog', *RUN])
    a, b = (output_reflectance(tmp_path / 'out' / f'{p.name.removesuffix(".SAFE")}.tif') for p in (old, new))
    with rasterio.open(tmp_path / 'out' / f'{new.name.removesuffix(".SAFE")}.tif') as dataset:
        assert dataset.offsets == (-0.1,) * 4  # its DNs with their offset
        assert dataset.tags(ns='IMAGE_STRUCTURE').get('LAYOUT') == 'COG'
    np.testing.assert_allclose(a, b, atol=1.01e-4)  # one DN step of rounding
    assert np.abs(a[0].reshape(48, 2, 48, 2).mean(axis=(1, 3)) - reflectance('B04', 10)).mean() < 0.01


def test_mask_classes_become_the_outputs_nodata(toy4, tmp_path):
    product = make_product(tmp_path / 'in', 'L2A', '05.09')
    infer_main(['--weights', str(toy4), '--input', str(product), '--output', str(tmp_path / 'out'),
                '--bands', RGBN, '--mask-classes', '3,8,9,10', *RUN])
    stem = product.name.removesuffix('.SAFE')
    with rasterio.open(tmp_path / 'out' / f'{stem}.tif') as dataset:
        valid = dataset.read_masks(1) > 0
        assert dataset.tags()['S2_MASKED_SCL_CLASSES'] == '3,8,9,10'
    masked = np.isin(scl_classes(20).repeat(4, axis=0).repeat(4, axis=1), [3, 8, 9, 10])
    np.testing.assert_array_equal(valid, ~masked)


def test_a_fixed_contract_refuses_another_baseline_and_the_folder_goes_on(tmp_path, capsys):
    weights = contract_checkpoint(tmp_path / 'fixed.pth', {'scale': 1e-4, 'offset': -0.1, 'range': [0.0, 1.0]})
    folder = tmp_path / 'in'
    old, new = make_product(folder, 'L1C', '03.01'), make_product(folder, 'L1C', '05.09', seed=1)
    with pytest.raises(SystemExit):
        infer_main(['--weights', str(weights), '--input', str(folder), '--output', str(tmp_path / 'out'),
                    '--bands', RGBN, *RUN])
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith('failed:')]
    assert len(failed) == 1 and old.name.removesuffix('.SAFE') in failed[0] and 'band B04' in failed[0]
    assert (tmp_path / 'out' / f'{new.name.removesuffix(".SAFE")}.tif').exists()
    assert not (tmp_path / 'out' / f'{old.name.removesuffix(".SAFE")}.tif').exists()


@pytest.mark.parametrize('case', ['missing band', 'truncated zip', 'no quantification', 'unknown band'])
def test_a_bad_product_is_one_line_and_the_folder_goes_on(toy4, tmp_path, capsys, case):
    folder = tmp_path / 'in'
    good = make_product(folder, 'L2A', '05.09', seed=1)
    bands = [RGBN]
    if case == 'missing band':
        bad = make_product(folder, 'L2A', '05.09', omit=('B08',))
    elif case == 'truncated zip':
        bad = zip_product(make_product(folder, 'L2A', '05.09'), remove=True)
        bad.write_bytes(bad.read_bytes()[:4000])
    elif case == 'no quantification':
        bad = make_product(folder, 'L2A', '05.09', quantification=False)
    else:
        good = make_product(folder, 'L1C', '05.09', seed=1)  # the L1C has B10, the L2A has not
        bad, bands = make_product(folder, 'L2A', '05.09'), ['B04,B03,B02,B10', '--resample']
    with pytest.raises(SystemExit) as exit_:
        infer_main(['--weights', str(toy4), '--input', str(folder), '--output', str(tmp_path / 'out'),
                    '--bands', *bands, *RUN])
    assert exit_.value.code != 0
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith('failed:')]
    bad_stem = bad.name.removesuffix('.zip').removesuffix('.SAFE')
    assert any(bad_stem in line for line in failed)
    outputs = {path.name for path in (tmp_path / 'out').iterdir()} if (tmp_path / 'out').exists() else set()
    assert not any(name.startswith(bad_stem) for name in outputs)
    assert not any(name.startswith('.') for name in outputs)  # nothing half-written
    assert f'{good.name.removesuffix(".SAFE")}.tif' in outputs


def test_a_product_is_planned_whole_for_one_process_of_several(tmp_path):
    from segsr.inference.execution.scene import TilingOptions
    from segsr.inference.planning.work_plan import plan_units, read_header
    from segsr.sentinel2.request import ProductInput

    product = make_product(tmp_path, 'L2A', '05.09')
    header = read_header(ProductInput(product, tuple(RGBN.split(','))), ((1, 2, 3, 4),))
    assert (header.height, header.width, header.groups) == (48, 48, 1)
    units = plan_units([header], 4, TilingOptions(tile=16, overlap=0), split=True)
    assert len(units) == 1 and units[0].band is None
    assert read_header(ProductInput(product, ('B04', 'B10')), ((1, 2),)) is None  # its check says why
