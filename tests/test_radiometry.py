"""The radiometric contract: parsing, metadata conventions, exact inverse, the 8-bit default, and inference."""

import numpy as np
import pytest
import rasterio
import torch
from raster_fakes import BicubicToySR, CurvedToySR, contract_toy_checkpoint, register_toy, toy_checkpoint, write_raster
from raster_scenes import L2A_ADD_OFFSET, L2A_QUANTIFICATION, l2a_scene, reflectance, scaled_scene

from segsr.infer import main as infer_main
from segsr.radiometry.contract import Radiometry, calibration_from_metadata
from segsr.radiometry.stretch import unsigned_range_stretch
from segsr.utils.errors import SegSRError


def test_scale_offset_and_range_give_the_documented_network_values():
    contract = Radiometry.from_options({'scale': [1e-4, 2e-4], 'offset': -0.1, 'range': [0.0, 0.5]}, [2, 1])
    raw = np.array([[[1000.0, 6000.0]], [[500.0, 3000.0]]])
    stretch = contract.stretch(contract.calibration(None, 'x'), 2)
    physical = raw * np.array([1e-4, 2e-4])[:, None, None] - 0.1
    np.testing.assert_allclose(stretch.to_unit(raw), physical / 0.5, rtol=1e-6)
    assert Radiometry.from_dict(contract.to_dict()) == contract


def test_the_inverse_is_exact_and_unclipped_for_uint16():
    contract = Radiometry.from_options({'scale': 1e-4, 'offset': -0.1, 'range': [0.0, 0.3]})
    raw = np.arange(0, 65536, 7, dtype=np.uint16).reshape(1, 1, -1)
    stretch = contract.stretch(contract.calibration(None, 'x'), 1)
    unit = stretch.to_unit(raw)
    assert unit.max() > 1 and unit.min() < 0, 'values outside the range pass through'
    np.testing.assert_array_equal(stretch.from_unit(unit, np.uint16), raw)


def test_default_contract_is_the_8_bit_map_bit_for_bit():
    default = Radiometry.from_options(None)
    assert default.is_default
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(3, axis=0)
    ours = default.stretch(default.calibration(None, 'x'), 3).to_unit(values)
    np.testing.assert_array_equal(ours, unsigned_range_stretch(np.uint8, 3).to_unit(values))
    np.testing.assert_array_equal(ours, (values.astype(np.float64) / 255).astype(np.float32))


def test_from_metadata_reads_gdal_scale_offset_and_the_l2a_tags(tmp_path):
    landsat = scaled_scene(tmp_path / 'lc.tif', bands=3, size=8)
    with rasterio.open(landsat) as dataset:
        calibration = calibration_from_metadata(dataset, [0, 2])
    np.testing.assert_allclose(calibration.scale, [2.75e-5, 2.75e-5])
    np.testing.assert_allclose(calibration.offset, [-0.2, -0.2])
    l2a = l2a_scene(tmp_path / 'l2a.tif', bands=2, size=8)
    with rasterio.open(l2a) as dataset:
        calibration = calibration_from_metadata(dataset, [0, 1])
        dn = dataset.read().astype(np.float64)
    np.testing.assert_allclose(dn * calibration.scale[:, None, None] + calibration.offset[:, None, None],
                               (dn + L2A_ADD_OFFSET) / L2A_QUANTIFICATION)
    np.testing.assert_allclose(dn / L2A_QUANTIFICATION + L2A_ADD_OFFSET / L2A_QUANTIFICATION,
                               reflectance(2, 8), atol=1e-4)
    plain = write_raster(tmp_path / 'plain.tif', np.ones((1, 4, 4), np.uint16))
    with rasterio.open(plain) as dataset:
        assert calibration_from_metadata(dataset, [0]) is None
    contract = Radiometry.from_options({'from_metadata': True, 'range': [0, 1]})
    with pytest.raises(SegSRError, match='carries no scale/offset metadata'):
        contract.calibration(None, str(plain))


def test_per_band_values_must_fit_the_band_count():
    contract = Radiometry.from_options({'range': [[0, 1], [0, 2], [0, 3]]})
    with pytest.raises(SegSRError, match='gives 3 values per band but the data has 4 bands'):
        contract.stretch(contract.calibration(None, 'x'), 4)


@pytest.mark.parametrize(('section', 'message'), [
    ({'scale': 1e-4}, 'radiometry.range: missing'),
    ({'range': [1, 0]}, 'needs low < high'),
    ({'range': [0, 1], 'scale': [1, 2, 3]}, 'radiometry.scale: expected one number or 2'),
    ({'range': [0, 1], 'from_metadata': True, 'offset': 0}, 'drop scale/offset'),
    ({'range': [0, 1], 'scal': 1}, 'radiometry.scal: unknown key'),
    ({'range': [0, 1], 'scale': 0}, 'non-zero scale'),
])
def test_bad_sections_are_one_line(section, message):
    with pytest.raises(SegSRError, match=message) as error:
        Radiometry.from_options(section, [1, 2])
    assert '\n' not in str(error.value)


def contract_checkpoint(path, contract: Radiometry, channels: int = 1):
    return contract_toy_checkpoint(path, contract.to_dict(), channels=channels)


def read(path):
    with rasterio.open(path) as dataset:
        return dataset.read().astype(np.float64)


def test_overlapping_crops_of_one_scene_agree_with_the_contract_but_not_per_scene_stretch(tmp_path):
    """Two crops of different content, super-resolved on their own, must give one value per common pixel."""
    size = 72
    dn = np.rint(reflectance(1, size) * 10000).astype(np.uint16)
    dn[:, 40:, 40:] = np.minimum(dn[:, 40:, 40:].astype(np.int64) * 3, 65535).astype(np.uint16)  # bright field
    (tmp_path / 'in').mkdir()
    left = write_raster(tmp_path / 'in' / 'left.tif', np.ascontiguousarray(dn[:, :, :48]))
    right = write_raster(tmp_path / 'in' / 'right.tif', np.ascontiguousarray(dn[:, :, 24:]))
    contract = Radiometry.from_options({'scale': 1e-4, 'range': [0.0, 1.0]}, [1])
    register_toy()
    state = CurvedToySR(2, 1).state_dict()
    weights = tmp_path / 'net.pth'
    torch.save({'params_ema': state, 'network_g': {'type': 'CurvedToySR', 'upscale': 2, 'num_in_ch': 1},
                'radiometry': contract.to_dict()}, weights)
    common_left, common_right = (slice(16, 128), slice(56, 88)), (slice(16, 128), slice(8, 40))

    def difference(*extra: str) -> float:
        out = tmp_path / f'out{len(extra)}'
        infer_main(['--weights', str(weights), '--input', str(tmp_path / 'in'), '--output', str(out),
                    '--tile', '128', '--overlap', '0', '--device', 'cpu', *extra])
        a, b = read(out / left.name)[0], read(out / right.name)[0]
        return float(np.abs(a[common_left] - b[common_right]).max())

    assert difference() <= 1, 'the contract maps both crops alike'
    assert difference('--stretch', 'percentile') > 20, 'per-scene percentiles give each crop its own map'


def test_stretch_flag_over_a_contract_warns_once(tmp_path, capsys):
    scene = write_raster(tmp_path / 'scene.tif', np.full((1, 16, 16), 1200, np.uint16))
    weights = contract_checkpoint(tmp_path / 'net.pth', Radiometry.from_options({'scale': 1e-4, 'range': [0, 1]}))
    infer_main(['--weights', str(weights), '--input', str(scene), '--output', str(tmp_path / 'o'),
                '--device', 'cpu', '--stretch', 'percentile'])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and 'replaces the radiometric contract' in warnings[0]


def test_an_old_8_bit_checkpoint_gives_the_same_outputs_as_before(tmp_path):
    """A checkpoint without a contract keeps 0..255 -> 0..1 at inference, pixel for pixel: the expected output is
    computed with the arithmetic inference used before contracts (float64 divide, float32, rint, clip)."""
    register_toy()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 24, 24), dtype=np.uint8)
    scene = write_raster(tmp_path / 'rgb.tif', rgb)
    weights = toy_checkpoint(tmp_path / 'old.pth', channels=3)
    assert 'radiometry' not in torch.load(weights, weights_only=True)
    infer_main(['--weights', str(weights), '--input', str(scene), '--output', str(tmp_path / 'o'),
                '--tile', '64', '--overlap', '0', '--device', 'cpu'])
    network = BicubicToySR(2, 3)
    network.load_state_dict(torch.load(weights, weights_only=True)['params_ema'])
    with torch.no_grad():
        unit = (rgb.astype(np.float64) / 255.0).astype(np.float32)
        out = network(torch.from_numpy(unit)[None])[0].numpy().astype(np.float64)
    expected = np.clip(np.rint(out * 255.0), 0, 255)
    np.testing.assert_array_equal(read(tmp_path / 'o' / 'rgb.tif'), expected)


def test_test_py_takes_the_stored_contract_and_warns_when_the_options_state_another(tmp_path):
    from segsr.evaluation import apply_checkpoint_contract
    from segsr.options import set_contract

    stored = Radiometry.from_options({'from_metadata': True, 'range': [0.0, 0.6]}, [3, 2, 1])
    weights = tmp_path / 'net.pth'
    torch.save({'params': {}, 'radiometry': stored.to_dict()}, weights)
    opt = {'path': {'pretrain_network_g': str(weights)}, 'datasets': {'test_1': {}}}
    set_contract(opt, Radiometry.from_options(None))
    assert apply_checkpoint_contract(opt) is None
    assert opt['datasets']['test_1']['contract'] == stored.to_dict()
    opt['radiometry'] = {'scale': 1e-4, 'range': [0.0, 1.0]}
    set_contract(opt, Radiometry.from_options(opt['radiometry']))
    warning = apply_checkpoint_contract(opt)
    assert 'differs from the one the weights were trained with' in warning and '\n' not in warning
    assert opt['contract'] == Radiometry.from_options(opt['radiometry']).to_dict(), 'the stated section wins'


def test_an_unreadable_stored_contract_is_one_line(tmp_path):
    import segsr

    weights = toy_checkpoint(tmp_path / 'net.pth', channels=1)
    content = torch.load(weights, weights_only=True)
    content['radiometry'] = {'bands': [1], 'range': 'bright'}
    torch.save(content, weights)
    with pytest.raises(SegSRError, match='unreadable radiometry entry') as error:
        segsr.load(weights, device='cpu')
    assert '\n' not in str(error.value)
