"""segsr-infer's evaluation outputs: the consistency report, the enforced consistency, the uncertainty raster."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from raster_fakes import dem_with_negatives, smooth, toy_checkpoint, write_raster

from segsr.infer import main


@pytest.fixture(scope='module')
def toy(tmp_path_factory) -> Path:
    return toy_checkpoint(tmp_path_factory.mktemp('toy') / 'toy_x2.pth', channels=1)


def infer(*args) -> None:
    main([str(a) for a in args])


def report(folder: Path) -> dict:
    return json.loads((folder / 'dem_consistency.json').read_text())


def test_consistency_report_and_enforced_consistency_on_a_float_raster(toy, tmp_path):
    source = write_raster(tmp_path / 'dem.tif', dem_with_negatives(32))
    common = ('--weights', toy, '--input', source, '--tile', 32, '--overlap', 0, '--device', 'cpu',
              '--consistency-report')
    infer(*common, '--output', tmp_path / 'plain')
    infer(*common, '--output', tmp_path / 'enforced', '--enforce-consistency')
    plain, enforced = report(tmp_path / 'plain'), report(tmp_path / 'enforced')
    assert plain['bands'] == [1] and plain['valid_pixels'] == 32 * 32 and plain['sam_degrees'] is None
    assert 20 < plain['psnr'] < 80 and plain['mae'] > 1e-3  # heights in metres
    # One tile covers the scene, so the float32 output degrades back to the input to float precision.
    assert enforced['psnr'] > 100 and enforced['mae'] < 1e-4


def test_consistency_report_of_a_multiband_scene_with_nodata(tmp_path):
    toy3 = toy_checkpoint(tmp_path / 'toy3.pth', channels=3)
    data = np.stack([np.rint(1000 + 3000 * smooth(32, 32, seed)) for seed in range(3)]).astype(np.uint16)
    data[:, :4, :] = 0  # a nodata strip
    source = write_raster(tmp_path / 'scene.tif', data, nodata=0)
    infer('--weights', toy3, '--input', source, '--output', tmp_path / 'out', '--tile', 16, '--overlap', 4,
          '--device', 'cpu', '--consistency-report')
    result = json.loads((tmp_path / 'out' / 'scene_consistency.json').read_text())
    assert result['bands'] == [1, 2, 3] and result['valid_pixels'] == (28 - 2) * 32  # nodata and the 2 rows beside it
    assert 0 <= result['sam_degrees'] < 5 and result['mae'] > 0 and np.isfinite(result['psnr'])


def test_uncertainty_raster_is_georeferenced_like_the_output(toy, tmp_path):
    source = write_raster(tmp_path / 'dem.tif', dem_with_negatives(32))
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--tile', 16, '--overlap', 4,
          '--device', 'cpu', '--uncertainty')
    with rasterio.open(tmp_path / 'out' / 'dem.tif') as output, \
            rasterio.open(tmp_path / 'out' / 'dem_uncertainty.tif') as spread:
        assert (spread.width, spread.height, spread.count) == (output.width, output.height, 1)
        assert spread.transform == output.transform and spread.crs == output.crs
        assert spread.descriptions == ('spread bands 1',)
        values = spread.read(1)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() > 0


def test_uncertainty_with_guidance_or_onnx_is_one_line(toy, tmp_path):
    source = write_raster(tmp_path / 'dem.tif', dem_with_negatives(32))
    with pytest.raises(SystemExit, match='error: --uncertainty, --enforce-consistency apply to --weights only'):
        infer('--onnx', tmp_path / 'model.onnx', '--input', source, '--output', tmp_path / 'out', '--uncertainty',
              '--enforce-consistency')
    with pytest.raises(SystemExit, match='error: --uncertainty and --save-guidance cannot run together'):
        infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--uncertainty', '--save-guidance')
    assert not (tmp_path / 'out').exists()
