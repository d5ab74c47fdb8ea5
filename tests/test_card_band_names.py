"""The model card names the bands as the training data does, and a Sentinel-2 product is stacked by them when
--bands names none; the Wald table compares networks of one test set only."""

import json

import numpy as np
import pytest
import rasterio
from s2_products import make_product

from scripts.wald_table import main as wald_table_main
from segsr.infer import main as infer_main
from segsr.options.inference import FileOptions, with_card_bands
from segsr.radiometry.contract import Radiometry
from segsr.weights.card import band_names, first_raster_header, raster_band_names


def write_raster(path, descriptions):
    profile = {'driver': 'GTiff', 'height': 8, 'width': 8, 'count': len(descriptions), 'dtype': 'uint16'}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, 'w', **profile) as raster:
        raster.write(np.ones((len(descriptions), 8, 8), np.uint16))
        for band, description in enumerate(descriptions, start=1):
            if description:
                raster.set_band_description(band, description)
    return path


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
@pytest.mark.parametrize('descriptions, bands, expected', [
    (['B02', 'B03', 'B04', 'B08'], None, ['B02', 'B03', 'B04', 'B08']),
    (['B02', 'B03', 'B04', 'B08'], (3, 2, 1), ['B04', 'B03', 'B02']),
    (['B02', '', 'B04'], None, None),  # a band without a name: numbers instead
    (['red', 'red', 'nir'], None, None),  # two bands alike would be ambiguous
    (['B02', 'B03'], (1, 5), None),
])
def test_the_card_takes_the_names_of_the_training_rasters(tmp_path, descriptions, bands, expected):
    write_raster(tmp_path / 'hr' / 'a.tif', descriptions)
    dataset = {'dataroot_gt': str(tmp_path / 'hr')}
    assert first_raster_header(dataset).dtype == 'uint16'
    assert raster_band_names(dataset, first_raster_header(dataset), bands) == expected


def test_a_product_dataset_names_the_bands_it_stacks_and_unnamed_bands_keep_their_numbers():
    assert raster_band_names({'product_bands': ['b04', 'B03', 'B02', 'B08']}, None, (2, 1)) == ['B03', 'B04']
    contract = Radiometry.from_dict({'range': [[0.0], [1.0]], 'bands': [4, 3, 2]})
    assert band_names(contract, 3, None) == ['band_4', 'band_3', 'band_2']
    assert band_names(contract, 3, ['B08', 'B04']) == ['band_4', 'band_3', 'band_2'], 'one name per band or none'


def test_a_product_is_stacked_by_the_cards_sentinel2_bands_unless_bands_are_given():
    card = {'input': {'bands': ['B02', 'B03', 'B8A', 'B11']}}
    assert with_card_bands(FileOptions(), card).card_bands == ('B02', 'B03', 'B8A', 'B11')
    named = FileOptions(bands=['B04', 'B03'])
    assert with_card_bands(named, card) is named, '--bands wins'
    for other in ({'input': {'bands': ['band_1', 'band_2']}}, {'input': {'bands': ['red', 'green', 'blue']}}, None):
        assert with_card_bands(FileOptions(), other).card_bands == ()


def write_result(folder, network, bicubic_psnr, psnr, dataset='s2_val'):
    average = {'sam': 1.0, 'ergas': 1.5, 'bicubic_sam': 2.0, 'bicubic_ergas': 3.0}
    for band, (b, p) in enumerate(zip(bicubic_psnr, psnr, strict=True), start=1):
        average.update({f'psnr_band{band}': p, f'ssim_band{band}': 0.9, f'bicubic_psnr_band{band}': b,
                        f'bicubic_ssim_band{band}': 0.8})
    folder.mkdir(parents=True)
    (folder / f'{dataset}.json').write_text(json.dumps({
        'network': network, 'dataset': dataset, 'num_images': 1, 'average': average,
        'images': [{'image': 'a', **average}]}))
    return str(folder)


def test_the_wald_table_has_bicubic_and_one_row_per_network(tmp_path, capsys):
    plain = write_result(tmp_path / 'plain', 'S2ReferenceNet', [30.0, 31.0], [35.0, 36.5])
    guided = write_result(tmp_path / 'guided', 'GuidedS2Reference', [30.0, 31.0], [35.5, 36.0])
    table = wald_table_main([plain, guided, '--bands', 'B05,B11', '--out', str(tmp_path / 'wald.md')])
    assert (tmp_path / 'wald.md').read_text() == table
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    assert rows[0] == '|  | B05 | B11 | SAM (°) | ERGAS |'
    assert rows[1:] == ['| bicubic | 30.00 / 0.8000 | 31.00 / 0.8000 | 2.000 | 3.000 |',
                        '| S2ReferenceNet | 35.00 / 0.9000 | 36.50 / 0.9000 | 1.000 | 1.500 |',
                        '| GuidedS2Reference | 35.50 / 0.9000 | 36.00 / 0.9000 | 1.000 | 1.500 |']

    other = write_result(tmp_path / 'other', 'GuidedS2Reference', [29.0, 31.0], [35.5, 36.0])
    with pytest.raises(SystemExit) as stop:
        wald_table_main([plain, other, '--bands', 'B05,B11'])
    assert 'was not tested on the test set of' in str(stop.value.code)
    with pytest.raises(SystemExit) as stop:
        wald_table_main([plain, '--bands', 'B05'])
    assert 'does not hold 1 measured bands' in str(stop.value.code)


def test_unreadable_weights_read_for_their_card_are_one_line_naming_the_file(tmp_path):
    product = make_product(tmp_path / 'in')
    weights = tmp_path / 'net.safetensors'
    weights.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"broken')
    with pytest.raises(SystemExit) as stop:
        infer_main(['--weights', str(weights), '--input', str(product), '--output', str(tmp_path / 'out'),
                    '--resample', '--device', 'cpu'])
    assert str(stop.value.code).startswith(f'error: checkpoint {weights} cannot be read as safetensors')
    assert not (tmp_path / 'out').exists()
