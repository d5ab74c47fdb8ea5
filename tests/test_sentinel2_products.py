"""Sentinel-2 products read as they come: band files found by name, calibrated by their own metadata."""

import numpy as np
import pytest
import rasterio
from s2_products import make_product, reflectance, scl_classes, zip_product

from segsr.radiometry.contract import Radiometry
from segsr.sentinel2.product import Product, band_names, is_product
from segsr.sentinel2.qa import QALayer, mask_classes
from segsr.sentinel2.stack import stack_vrt, target_grid
from segsr.utils.errors import SegSRError

RGBN = ('B04', 'B03', 'B02', 'B08')


def stacked_reflectance(path, bands=RGBN, resample=False) -> tuple[np.ndarray, tuple]:
    with rasterio.open(stack_vrt(Product(path), bands, resample)) as dataset:
        raw = dataset.read().astype(np.float64)
        scales = np.array(dataset.scales)[:, None, None]
        offsets = np.array(dataset.offsets)[:, None, None]
        return raw * scales + offsets, dataset.descriptions


@pytest.mark.parametrize('level', ['L1C', 'L2A'])
@pytest.mark.parametrize('zipped', [False, True])
def test_a_product_stacks_named_bands_as_reflectance(tmp_path, level, zipped):
    path = make_product(tmp_path, level, '05.09')
    path = zip_product(path, remove=True) if zipped else path
    assert is_product(path)
    values, descriptions = stacked_reflectance(path)
    assert descriptions == RGBN
    for index, band in enumerate(RGBN):
        np.testing.assert_allclose(values[index], reflectance(band, 10), atol=0.6e-4)


@pytest.mark.parametrize('level', ['L1C', 'L2A'])
def test_both_baselines_give_the_same_reflectance(tmp_path, level):
    old = make_product(tmp_path, level, '03.01')
    new = make_product(tmp_path, level, '05.09')
    assert Product(old).metadata.offsets == {}
    assert set(Product(new).metadata.offsets.values()) == {-1000.0}
    with rasterio.open(stack_vrt(Product(old), RGBN)) as a, rasterio.open(stack_vrt(Product(new), RGBN)) as b:
        assert np.all(b.read().astype(int) - a.read().astype(int) == 1000)  # the DNs differ ...
    np.testing.assert_allclose(stacked_reflectance(old)[0], stacked_reflectance(new)[0], atol=1e-9)  # ... not these


def test_the_contract_of_a_product_maps_dn_to_reflectance(tmp_path):
    product = Product(make_product(tmp_path, 'L2A', '05.09'))
    contract = product.contract(['B04', 'B08'])
    stretch = contract.stretch(contract.calibration(None, product.name), 2)
    dn = np.array([[[1000.0]], [[11000.0]]])
    np.testing.assert_allclose(stretch.to_unit(dn)[:, 0, 0], [0.0, 1.0], atol=1e-6)  # reflectance 0 and 1
    assert product.tags()['S2_PROCESSING_BASELINE'] == '05.09'


def test_twenty_metre_bands_come_to_ten_metres_only_when_asked(tmp_path):
    path = make_product(tmp_path, 'L2A', '05.09')
    with pytest.raises(SegSRError, match=r'B05 is 20 m.*--resample'):
        stack_vrt(Product(path), ('B04', 'B05'))
    values, _ = stacked_reflectance(path, ('B04', 'B05'), resample=True)
    assert values.shape == (2, 48, 48)
    coarse = values[1].reshape(24, 2, 24, 2).mean(axis=(1, 3))
    assert np.abs(coarse - reflectance('B05', 20)).mean() < 0.01
    only_20m, _ = stacked_reflectance(path, ('B05', 'B8A'))
    assert only_20m.shape == (2, 24, 24)  # one resolution: no resampling needed


def test_scl_reaches_the_output_grid_by_nearest_neighbour(tmp_path):
    product = Product(make_product(tmp_path, 'L2A', '05.09'))
    layer = QALayer(product, target_grid(product, RGBN, False))
    classes = layer.read(0, 48, 0, 48, zoom=2)
    assert classes.shape == (96, 96)
    np.testing.assert_array_equal(classes, scl_classes(20).repeat(4, axis=0).repeat(4, axis=1))
    valid = layer.valid(mask_classes('3,8,9,10'), 0, 48, 0, 48)
    assert not valid[np.isin(layer.read(0, 48, 0, 48), [3, 8, 9, 10])].any() and valid.any()
    layer.close()


def test_band_names_are_read_like_a_user_writes_them():
    assert band_names('b4,B03,b8a,B8') == ('B04', 'B03', 'B8A', 'B08')
    with pytest.raises(SegSRError, match='B13'):
        band_names('B04,B13')
    with pytest.raises(SegSRError, match='12 is not an SCL class'):
        mask_classes('3,12')


def test_a_missing_band_is_one_line_naming_product_and_band(tmp_path):
    path = make_product(tmp_path, 'L2A', '05.09', omit=('B08',))
    with pytest.raises(SegSRError, match=r'S2B_MSIL2A_\S+ has no band B08') as error:
        stack_vrt(Product(path), RGBN)
    assert '\n' not in str(error.value)


def test_a_truncated_zip_is_one_line(tmp_path):
    archive = zip_product(make_product(tmp_path, 'L1C', '05.09'), remove=True)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SegSRError, match=r'not a readable zip.*download the product again'):
        Product(archive)


def test_metadata_without_quantification_value_is_one_line(tmp_path):
    path = make_product(tmp_path, 'L2A', '05.09', quantification=False)
    with pytest.raises(SegSRError, match=r'S2B_MSIL2A_\S+: the metadata file has no BOA_QUANTIFICATION_VALUE'):
        Product(path)


def test_hostile_metadata_is_refused(tmp_path):
    path = make_product(tmp_path, 'L1C', '05.09')
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'
    (path / 'MTD_MSIL1C.xml').write_text(bomb)
    with pytest.raises(SegSRError, match='not readable XML'):
        Product(path)


def test_a_band_the_product_does_not_have_is_one_line(tmp_path):
    path = make_product(tmp_path, 'L1C', '05.09')
    with pytest.raises(SegSRError, match=r'has no band B10 .*pick bands the product holds'):
        stack_vrt(Product(make_product(tmp_path, 'L2A', '05.09')), ('B04', 'B10'), resample=True)
    with pytest.raises(SegSRError, match=r'SCL holds classes'):
        stack_vrt(Product(path), ('B04', 'SCL'))
    with pytest.raises(SegSRError, match='no SCL layer'):
        QALayer(Product(path), target_grid(Product(path), RGBN, False))


def test_a_raster_dataset_trains_on_the_stack_inference_reads(tmp_path):
    from segsr.data.raster_dataset import RasterDataset

    folder = tmp_path / 'products'
    make_product(folder, 'L2A', '03.01')
    zip_product(make_product(folder, 'L2A', '05.09', seed=1), remove=True)
    contract = Radiometry.from_options({'from_metadata': True, 'range': [0.0, 1.0]})
    dataset = RasterDataset({'scale': 2, 'dataroot_gt': str(folder), 'phase': 'val', 'contract': contract.to_dict(),
                             'product_bands': ['B04', 'B03', 'B02', 'B08']})
    assert len(dataset) == 2
    for index, seed in enumerate((0, 1)):
        item = dataset[index]
        assert item['gt'].shape == (4, 48, 48) and item['lq'].shape == (4, 24, 24)
        np.testing.assert_allclose(item['gt'][0].numpy(), reflectance('B04', 10, seed), atol=1e-4)


def test_a_raster_dataset_of_products_needs_band_names(tmp_path):
    from segsr.data.raster_dataset import RasterDataset

    make_product(tmp_path, 'L1C', '05.09')
    with pytest.raises(SegSRError, match='product_bands'):
        RasterDataset({'scale': 2, 'dataroot_gt': str(tmp_path), 'phase': 'val',
                       'contract': Radiometry.from_options({'from_metadata': True, 'range': [0.0, 1.0]}).to_dict()})
