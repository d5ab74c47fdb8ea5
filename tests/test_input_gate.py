"""One gate for every door: the same bad arrays, contracts and tiny images get the same one-line refusal from the
Python API, segsr-infer (the data as .npy and GeoTIFF files) and the datasets segsr-test reads."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_HAT, write_yaml
from raster_fakes import contract_toy_checkpoint, smooth, toy_checkpoint, write_raster
from test_bad_input import expect_one_line_error

import segsr
import segsr.api
from segsr import evaluation
from segsr.data.loaders import build_checked_dataset
from segsr.infer import main as infer
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

TILING = ['--tile', '32', '--overlap', '8']
API = 'the array '
BAD_ARRAYS = [
    ('complex', np.full((3, 8, 8), 1 + 2j, np.complex64), 'holds complex values (complex64)'),
    ('object', np.full((3, 8, 8), 7, object), 'holds Python object values (object)'),
    ('bool', np.ones((3, 8, 8), bool), 'holds boolean values (bool)'),
    ('text', np.full((3, 8, 8), 'a'), 'holds text values (<U1)'),
    ('empty', np.ones((3, 0, 8), np.float32), 'which holds no pixels'),
    ('four_d', np.ones((1, 3, 8, 8), np.float32), 'which is not an image'),
]
IDS = [case[0] for case in BAD_ARRAYS]


@pytest.fixture(scope='module')
def toy(tmp_path_factory) -> Path:
    return toy_checkpoint(tmp_path_factory.mktemp('gate') / 'toy_x2.pth')


def api_refusal(call) -> str:
    with pytest.raises(SegSRError) as error:
        call()
    message = str(error.value)
    assert '\n' not in message
    return message


def refusal_tail(message: str, subject: str) -> str:
    """What a refusal says about its subject (the array, or a file's path), without the subject."""
    assert subject in message, (subject, message)
    return message.split(subject, 1)[1].strip()


def test_the_cases_cover_every_kind_the_gate_refuses():
    kinds = {array.dtype.kind for _, array, _ in BAD_ARRAYS}
    assert {'c', 'O', 'b', 'U'} <= kinds
    assert any(0 in array.shape for _, array, _ in BAD_ARRAYS) and any(array.ndim > 3 for _, array, _ in BAD_ARRAYS)


@pytest.mark.parametrize('name, array, expected', BAD_ARRAYS, ids=IDS)
def test_every_public_door_refuses_a_bad_array_with_the_same_line(toy, tmp_path, capsys, name, array, expected):
    """``Upscaler.upscale`` (numpy and, where torch holds the dtype, a tensor), ``Upscaler.upscale_dataarray``,
    ``Upscaler.upscale_file``,
    ``Upscaler.run``, ``segsr.api.run`` and segsr-infer, the last four given the array as a .npy file."""
    upscaler = segsr.load(toy, device='cpu')
    from_api = api_refusal(lambda: upscaler.upscale(array, tile=32, overlap=8))
    assert from_api.startswith(API) and expected in from_api, from_api
    tail = refusal_tail(from_api, API)
    if array.dtype.kind in 'cb' or 0 in array.shape:
        assert refusal_tail(api_refusal(lambda: upscaler.upscale(torch.from_numpy(array))), API) == tail
    if array.ndim == 3 and array.size:
        import xarray

        data = xarray.DataArray(array, dims=('band', 'y', 'x'))
        assert refusal_tail(api_refusal(lambda: upscaler.upscale_dataarray(data)), API) == tail

    source = tmp_path / f'{name}.npy'
    np.save(source, array, allow_pickle=True)  # the file may hold what numpy can write; segsr never unpickles it
    out = tmp_path / 'out'
    for call in (lambda: upscaler.upscale_file(source, out / 'a.npy'),
                 lambda: upscaler.run(source, out),
                 lambda: segsr.api.run(source, out, weights=toy, device='cpu')):
        assert tail in refusal_tail(api_refusal(call), str(source))
    line = expect_one_line_error(infer, ['--weights', str(toy), '--input', str(source), '--output', str(out), *TILING],
                                 tmp_path, (), capsys)
    assert refusal_tail(line, str(source)) == tail
    assert not out.exists()


def test_a_complex_geotiff_gets_the_arrays_line_from_segsr_infer_segsr_test_and_datasets(toy, tmp_path, capsys):
    upscaler = segsr.load(toy, device='cpu')
    field = (smooth(16, 16) + 1j * smooth(16, 16, 1)).astype(np.complex64)[None]
    tail = refusal_tail(api_refusal(lambda: upscaler.upscale(field)), API)
    scenes = tmp_path / 'scenes'
    scenes.mkdir()
    raster = write_raster(scenes / 'sar.tif', field)
    line = expect_one_line_error(infer, ['--weights', str(toy), '--input', str(raster), '--output',
                                         str(tmp_path / 'out'), *TILING], tmp_path, (), capsys)
    assert refusal_tail(line, str(raster)) == tail
    contract = Radiometry.from_options({'range': [0.0, 1.0]}, [1]).to_dict()
    options = {'name': 'sar', 'type': 'RasterDataset', 'dataroot_gt': str(scenes), 'scale': 2, 'phase': 'val',
               'contract': contract}
    assert tail in api_refusal(lambda: build_checked_dataset(options, 'val'))
    test_options = {'name': 'sar', 'model_type': 'HATModel', 'scale': 2, 'num_gpu': 0,
                    'radiometry': {'range': [0.0, 1.0]}, 'datasets': {'test_1': options},
                    'network_g': {'type': 'HAT', 'upscale': 2, 'in_chans': 1, **TINY_HAT},
                    'path': {'pretrain_network_g': str(toy)}}
    line = expect_one_line_error(evaluation.main, ['-opt', str(write_yaml(tmp_path / 't.yml', test_options)),
                                                   '--root', str(tmp_path / 'results')], scenes, (), capsys)
    assert tail in line and not (tmp_path / 'results').exists()


def contract_checkpoint(path: Path, **stored) -> Path:
    """A toy x2 network whose stored contract is a valid one with ``stored`` entries replaced (as a hand-edited or
    foreign file would hold them)."""
    contract = {**Radiometry.from_options({'scale': 1e-4, 'offset': 0.0, 'range': [0.0, 1.0]}).to_dict(), **stored}
    return contract_toy_checkpoint(path, contract)


BAD_CONTRACTS = [
    ('nan_scale', {'scale': [math.nan]}, {'scale': [math.nan], 'range': [0.0, 1.0]}, 'radiometry.scale'),
    ('inf_offset', {'offset': [math.inf]}, {'offset': [math.inf], 'range': [0.0, 1.0]}, 'radiometry.offset'),
    ('zero_scale', {'scale': [0.0]}, {'scale': [0.0], 'range': [0.0, 1.0]}, 'non-zero scale'),
    ('range_high_below_low', {'range': [[1.0], [0.0]]}, {'range': [[1.0, 0.0]]}, 'low < high'),
    ('range_nan', {'range': [[0.0], [math.nan]]}, {'range': [[0.0, math.nan]]}, 'radiometry.range'),
    ('two_scales_for_three_bands', {'scale': [1.0, 2.0], 'bands': [1, 2, 3]},
     {'scale': [1.0, 2.0], 'range': [0.0, 1.0]}, 'radiometry.scale'),
]


@pytest.mark.parametrize('name, stored, section, expected', BAD_CONTRACTS, ids=[case[0] for case in BAD_CONTRACTS])
def test_a_stored_contract_is_checked_as_an_option_file_is(tmp_path, capsys, name, stored, section, expected):
    """The same bad numbers from an option file's section and from a checkpoint give the same reason; the
    checkpoint is refused by the API and by segsr-infer in one line, nothing written."""
    from_options = api_refusal(lambda: Radiometry.from_options(section, stored.get('bands')))
    assert expected in from_options
    weights = contract_checkpoint(tmp_path / f'{name}.pth', **stored)
    from_api = api_refusal(lambda: segsr.load(weights, device='cpu'))
    assert str(weights) in from_api and from_options in from_api
    scene = write_raster(tmp_path / 'scene.tif', np.full((3, 8, 8), 900, np.uint16))
    line = expect_one_line_error(infer, ['--weights', str(weights), '--input', str(scene), '--output',
                                         str(tmp_path / 'out'), *TILING], tmp_path, (), capsys)
    assert from_api in line
    assert not (tmp_path / 'out').exists()


def test_a_files_own_scale_metadata_is_checked_as_a_contracts_scale(tmp_path, capsys):
    contract = Radiometry.from_options({'from_metadata': True, 'range': [0.0, 1.0]}).to_dict()
    weights = contract_toy_checkpoint(tmp_path / 'metadata.pth', contract)
    scene = write_raster(tmp_path / 'scene.tif', np.full((3, 8, 8), 900, np.uint16))
    import rasterio

    with rasterio.open(scene, 'r+') as dataset:
        dataset.scales = (0.0, 1e-4, 1e-4)
    expect_one_line_error(infer, ['--weights', str(weights), '--input', str(scene), '--output',
                                  str(tmp_path / 'out'), *TILING], tmp_path, ('scene.tif', 'non-zero scale'), capsys)


SMALLEST = [(1, 1, 1), (1, 1, 6), (1, 5, 1), (3, 1, 1), (3, 1, 6)]


@pytest.mark.parametrize('shape', SMALLEST, ids=['x'.join(map(str, shape)) for shape in SMALLEST])
def test_every_evaluation_output_runs_or_refuses_the_smallest_images(toy, tmp_path, capsys, shape):
    """``--uncertainty`` and ``--enforce-consistency`` run on 1x1, 1xN and single-band scenes; the consistency
    report, whose bicubic degradation needs two pixels a side, refuses them in one line from both doors."""
    values = np.rint(900 + 200 * np.random.default_rng(0).random(shape)).astype(np.uint16)
    scene = write_raster(tmp_path / 'tiny.tif', values)
    upscaler = segsr.load(toy, device='cpu')
    assert upscaler.upscale(values, layout='chw', tile=32, overlap=8).shape == (shape[0], shape[1] * 2, shape[2] * 2)
    for flag, extra in (('--uncertainty', 'tiny_uncertainty.tif'), ('--enforce-consistency', None)):
        out = tmp_path / flag.strip('-')
        infer(['--weights', str(toy), '--input', str(scene), '--output', str(out), flag, *TILING])
        import rasterio

        with rasterio.open(out / 'tiny.tif') as dataset:
            assert (dataset.count, dataset.height, dataset.width) == (shape[0], shape[1] * 2, shape[2] * 2)
        assert extra is None or (out / extra).is_file()
    from_api = api_refusal(lambda: upscaler.upscale_file(scene, tmp_path / 'api', consistency_report=True))
    assert '--consistency-report' in from_api and f'{shape[1]}x{shape[2]} pixels' in from_api
    line = expect_one_line_error(infer, ['--weights', str(toy), '--input', str(scene), '--output',
                                         str(tmp_path / 'report'), '--consistency-report', *TILING], tmp_path, (),
                                 capsys)
    assert from_api in line
    assert not (tmp_path / 'report').exists() and not (tmp_path / 'api').exists()


def test_a_npy_input_comes_back_in_its_layout_with_the_values_of_the_api(toy, tmp_path):
    """segsr-infer takes the .npy files the bad-array walk writes; good ones give the API's values."""
    upscaler = segsr.load(toy, device='cpu')
    for name, array in (('chw', np.random.default_rng(1).random((3, 9, 11)).astype(np.float32)),
                        ('hw', np.random.default_rng(2).integers(0, 4000, (9, 11)).astype(np.uint16))):
        np.save(tmp_path / f'{name}.npy', array)
        infer(['--weights', str(toy), '--input', str(tmp_path / f'{name}.npy'), '--output', str(tmp_path / 'out'),
               *TILING])
        written = np.load(tmp_path / 'out' / f'{name}.npy')
        layout = 'chw' if array.ndim == 3 else 'auto'
        np.testing.assert_array_equal(written, upscaler.upscale(array, layout=layout, tile=32, overlap=8))


@pytest.mark.parametrize('hr_shape', [(2, 2, 3), (2, 12, 3), (12, 2, 1), (2, 2, 1)], ids=['1x1', '1x6', '6x1', 'gray'])
def test_metrics_on_the_smallest_images_run_or_refuse_in_one_line(hr_shape):
    """Fidelity metrics run on a 1x1 LR's 2x2 output; the LR-consistency ones, which degrade the output back to a
    1-pixel side, refuse in one line instead of a tensor-size traceback; one more pixel a side and they run."""
    from basicsr.metrics.psnr_ssim import calculate_psnr

    from segsr.metrics.fidelity_metric import calculate_lr_mae, calculate_lr_psnr, calculate_lr_sam

    rng = np.random.default_rng(3)
    img, img2 = (rng.integers(0, 256, hr_shape, dtype=np.uint8) for _ in range(2))
    lq = rng.integers(0, 256, (hr_shape[0] // 2, hr_shape[1] // 2, hr_shape[2]), dtype=np.uint8)
    assert math.isfinite(calculate_psnr(img, img2, crop_border=0))
    for metric in (calculate_lr_psnr, calculate_lr_mae, calculate_lr_sam):
        message = api_refusal(lambda metric=metric: metric(img, lq))
        assert 'at least 4 pixels a side' in message and f'{hr_shape[0]}x{hr_shape[1]}' in message
    bigger = np.pad(img, ((2, 2), (2, 2), (0, 0)), mode='edge')
    bigger_lq = np.pad(lq, ((1, 1), (1, 1), (0, 0)), mode='edge')
    assert math.isfinite(calculate_lr_mae(bigger, bigger_lq))
