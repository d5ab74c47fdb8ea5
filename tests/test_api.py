"""The Python API gives the command line's values for numpy, torch and xarray inputs; docs/api.md runs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import torch
from conftest import ROOT
from raster_fakes import smooth, toy_checkpoint, write_raster

import segsr
from segsr.infer import main as infer
from segsr.inference.io.manifest import MANIFEST_NAME
from segsr.utils.errors import SegSRError

TILING = ('--tile', '32', '--overlap', '8')
OPTIONS = {'tile': 32, 'overlap': 8}


@pytest.fixture(scope='module')
def toy(tmp_path_factory) -> Path:
    return toy_checkpoint(tmp_path_factory.mktemp('api') / 'toy_x2.pth')


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


def reflectance(height: int = 40, width: int = 52) -> np.ndarray:
    """uint16, 3 bands, with a nodata (0) hole in every band."""
    data = np.stack([np.rint(800 + 3000 * smooth(height, width, seed)) for seed in range(3)]).astype(np.uint16)
    data[:, 5:12, 20:30] = 0
    return data


def test_numpy_hwc_uint8_equals_the_cli_on_a_png(toy, tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 44, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    infer(['--weights', str(toy), '--input', str(tmp_path / 'a.png'), '--output', str(tmp_path / 'out'), *TILING])
    from_cli = cv2.cvtColor(cv2.imread(str(tmp_path / 'out' / 'a.png')), cv2.COLOR_BGR2RGB)
    from_api = segsr.load(toy, device='cpu').upscale(rgb, **OPTIONS)
    assert from_api.dtype == np.uint8 and from_api.shape == (60, 88, 3)
    np.testing.assert_array_equal(from_api, from_cli)


def test_numpy_torch_and_xarray_equal_the_cli_on_a_geotiff_with_nodata(toy, tmp_path):
    rioxarray = pytest.importorskip('rioxarray')
    data = reflectance()
    source = write_raster(tmp_path / 'scene.tif', data, nodata=0)
    infer(['--weights', str(toy), '--input', str(source), '--output', str(tmp_path / 'out'), *TILING])
    from_cli = read(tmp_path / 'out' / 'scene.tif')
    assert (from_cli[:, 10:24, 40:60] == 0).all() and from_cli.max() > 0

    upscaler = segsr.load(toy, device='cpu')
    np.testing.assert_array_equal(upscaler.upscale(data, nodata=0, **OPTIONS), from_cli)
    tensor = upscaler.upscale(torch.from_numpy(data.astype(np.int32)), nodata=0, **OPTIONS)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.int32
    np.testing.assert_array_equal(tensor.numpy(), from_cli)

    scene = rioxarray.open_rasterio(source)
    scene.attrs['long_name'] = 'reflectance'
    result = upscaler.upscale_dataarray(scene, **OPTIONS)
    expected = rioxarray.open_rasterio(tmp_path / 'out' / 'scene.tif')
    np.testing.assert_array_equal(result.values, from_cli)
    assert result.dims == scene.dims and result.rio.crs == scene.rio.crs
    assert result.rio.nodata == 0 and result.attrs == scene.attrs
    np.testing.assert_allclose(result.x.values, expected.x.values)
    np.testing.assert_allclose(result.y.values, expected.y.values)
    assert result.rio.transform().almost_equals(expected.rio.transform())
    np.testing.assert_array_equal(result.band.values, scene.band.values)


def test_upscale_file_takes_the_cli_options_and_skips_a_done_output(toy, tmp_path):
    source = write_raster(tmp_path / 'scene.tif', reflectance(), nodata=0)
    infer(['--weights', str(toy), '--input', str(source), '--output', str(tmp_path / 'cli'), *TILING, '--cog',
           '--compress', 'zstd'])
    upscaler = segsr.load(toy)
    written = upscaler.upscale_file(source, tmp_path / 'api' / 'sr.tif', cog=True, compress='zstd', **OPTIONS)
    assert written == [tmp_path / 'api' / 'sr.tif']
    np.testing.assert_array_equal(read(written[0]), read(tmp_path / 'cli' / 'scene.tif'))
    with rasterio.open(written[0]) as cog:
        assert cog.tags(ns='IMAGE_STRUCTURE')['LAYOUT'] == 'COG' and cog.tags()['SEGSR_TILE'] == '32'
    modified = written[0].stat().st_mtime_ns
    assert upscaler.upscale_file(source, tmp_path / 'api' / 'sr.tif', skip_existing=True) == []
    assert written[0].stat().st_mtime_ns == modified
    with pytest.raises(SegSRError, match='exists'):
        upscaler.upscale_file(source, tmp_path / 'api' / 'sr.tif')
    with pytest.raises(SegSRError, match='unknown option'):
        upscaler.upscale_file(source, tmp_path / 'api' / 'other.tif', tiles=32)


def test_ambiguous_layout_must_be_named(toy):
    upscaler = segsr.load(toy)
    with pytest.raises(SegSRError, match='layout'):
        upscaler.upscale(np.zeros((3, 8, 3), np.uint8))
    assert upscaler.upscale(np.zeros((3, 8, 3), np.uint8), layout='chw').shape == (3, 16, 6)


def test_importing_segsr_stays_light():
    code = 'import sys, segsr; print(sorted(m for m in ("xarray", "rioxarray", "segsr.api") if m in sys.modules))'
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == '[]'


def test_docs_examples_run(toy, tmp_path, monkeypatch):
    pytest.importorskip('rioxarray')
    (tmp_path / 'net_g.pth').write_bytes(toy.read_bytes())
    write_raster(tmp_path / 'scene.tif', reflectance(), nodata=0)
    (tmp_path / 'tiles').mkdir()
    for index in range(3):
        cv2.imwrite(str(tmp_path / 'tiles' / f't{index}.png'), np.full((16, 20, 3), 40 * index, np.uint8))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r'```python\n(.*?)```', (ROOT / 'docs' / 'api.md').read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, 'docs/api.md', 'exec'), namespace)
    manifest = json.loads((tmp_path / 'out' / 'tiles' / MANIFEST_NAME).read_text())
    assert [entry['status'] for entry in manifest['inputs']] == ['done'] * 3


def test_a_rerun_with_skip_existing_redoes_nothing_and_says_so(toy, tmp_path):
    for index in range(2):
        cv2.imwrite(str(tmp_path / f'{index}.png'), np.full((12, 16, 3), 50 * index, np.uint8))
    command = ['--weights', str(toy), '--input', str(tmp_path), '--output', str(tmp_path / 'out'), '--skip-existing']
    infer(command)
    modified = {p.name: p.stat().st_mtime_ns for p in (tmp_path / 'out').glob('*.png')}
    infer(command)
    entries = json.loads((tmp_path / 'out' / MANIFEST_NAME).read_text())
    assert [entry['status'] for entry in entries['inputs']] == ['skipped', 'skipped']
    assert entries['summary']['skipped'] == 2 and entries['summary']['done'] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / 'out').glob('*.png')} == modified


def test_evaluation_outputs_from_the_api_equal_the_cli(toy, tmp_path):
    source = write_raster(tmp_path / 'scene.tif', reflectance(), nodata=0)
    flags = ('--uncertainty', '--enforce-consistency', '--consistency-report')
    infer(['--weights', str(toy), '--input', str(source), '--output', str(tmp_path / 'cli'), *TILING, *flags])
    upscaler = segsr.load(toy, device='cpu')
    evaluation = {'uncertainty': True, 'enforce_consistency': True, 'consistency_report': True}
    written = upscaler.upscale_file(source, tmp_path / 'api' / 'scene.tif', **OPTIONS, **evaluation)
    names = ['scene.tif', 'scene_uncertainty.tif', 'scene_consistency.json']
    assert [p.name for p in written] == names
    for name in names[:2]:
        np.testing.assert_array_equal(read(tmp_path / 'api' / name), read(tmp_path / 'cli' / name))
    api_report, cli_report = (json.loads((tmp_path / folder / names[2]).read_text()) for folder in ('api', 'cli'))
    assert api_report['output'] == str(tmp_path / 'api' / 'scene.tif'), 'the report names the output, not a temp file'
    api_report['output'] = cli_report['output']
    assert api_report == cli_report
    assert upscaler.upscale_file(source, tmp_path / 'api', skip_existing=True, **OPTIONS, **evaluation) == []
    with pytest.raises(SegSRError, match='uncertainty, consistency_report write files'):
        upscaler.upscale(reflectance(), uncertainty=True, consistency_report=True)
    with pytest.raises(SegSRError, match='--uncertainty and --save-guidance cannot run together'):
        upscaler.upscale_file(source, tmp_path / 'other', uncertainty=True, save_guidance=True)


def test_upscale_of_a_uint16_array_applies_the_checkpoints_contract(tmp_path, capsys):
    """``segsr.load(weights).upscale`` maps a multi-band uint16 array through the contract stored beside the network
    (its bands, scale/offset and range), as segsr-infer maps a file of the same values; ``stretch`` replaces it."""
    from raster_fakes import CurvedToySR, register_toy

    from segsr.radiometry.contract import Radiometry

    register_toy()
    contract = Radiometry.from_options({'scale': [1e-4, 2e-4, 1e-4], 'offset': -0.05, 'range': [0.0, 0.7]}, [3, 1, 2])
    weights = tmp_path / 'curved.pth'
    torch.manual_seed(0)
    torch.save({'params_ema': CurvedToySR(2, 3).state_dict(), 'radiometry': contract.to_dict(),
                'network_g': {'type': 'CurvedToySR', 'upscale': 2, 'num_in_ch': 3}}, weights)
    data = np.concatenate([reflectance(), np.full((1, 40, 52), 9, np.uint16)])  # band 4 is not in the contract
    data[:, 5:12, 20:30] = 700

    upscaler = segsr.load(weights, device='cpu')
    from_api = upscaler.upscale(data, layout='chw', **OPTIONS)
    source = write_raster(tmp_path / 'scene.tif', data)
    infer(['--weights', str(weights), '--input', str(source), '--output', str(tmp_path / 'out'), *TILING])
    from_cli = read(tmp_path / 'out' / 'scene.tif')
    assert 'warning' not in capsys.readouterr().err
    assert from_api.dtype == np.uint16 and from_api.shape == (3, 80, 104)
    np.testing.assert_array_equal(from_api, from_cli)
    upscaler.upscale_file(source, tmp_path / 'file.tif', **OPTIONS)
    np.testing.assert_array_equal(read(tmp_path / 'file.tif'), from_cli)

    network_order = [3, 1, 2]
    scale, offset = contract.scale[:, None, None], contract.offset[:, None, None]
    low, high = contract.low, contract.high
    unit = (data[[band - 1 for band in network_order]] * scale + offset - low) / (high - low)
    with torch.no_grad():
        out = CurvedToySR(2, 3).eval()
        out.load_state_dict(torch.load(weights, weights_only=True)['params_ema'])
        out = out(torch.from_numpy(unit.astype(np.float32))[None])[0].double().numpy()
    expected = np.clip(np.rint((out * (high - low) + low - offset) / scale), 0, 65535)
    expected = expected[[network_order.index(band) for band in (1, 2, 3)]]  # outputs keep the source order
    inner = (slice(None), slice(16, -16), slice(16, -16))
    assert np.abs(from_api[inner].astype(np.float64) - expected[inner]).max() <= 1

    stretched = upscaler.upscale(data, layout='chw', stretch='percentile', **OPTIONS)
    assert np.abs(stretched.astype(np.float64) - from_api).max() > 20, 'a per-scene map is another map'
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and 'replaces the radiometric contract' in warnings[0]


def test_upscale_file_never_replaces_an_evaluation_output_unless_overwrite(toy, tmp_path, monkeypatch):
    """A spread raster that appears while the scene runs (another run into the same folder) is kept: the
    outputs are published only under free names; ``overwrite=True`` replaces them all."""
    import segsr.api

    source = write_raster(tmp_path / 'scene.tif', reflectance(), nodata=0)
    out = tmp_path / 'out'
    theirs = out / 'scene_uncertainty.tif'
    budget = segsr.api.check_budget

    out.mkdir()

    def another_run_writes(*args, **kwargs):
        theirs.write_bytes(b'written meanwhile by another run')
        return budget(*args, **kwargs)

    monkeypatch.setattr(segsr.api, 'check_budget', another_run_writes)
    upscaler = segsr.load(toy, device='cpu')
    evaluation = {'uncertainty': True, 'consistency_report': True}
    with pytest.raises(SegSRError, match=f'output {re.escape(str(theirs))} exists: pass --overwrite'):
        upscaler.upscale_file(source, out, **OPTIONS, **evaluation)
    assert theirs.read_bytes() == b'written meanwhile by another run'
    left = sorted(p.name for p in out.iterdir())
    assert 'scene.tif' not in left, 'the image, published last, is not: the input is not taken for done'
    assert not [name for name in left if name.startswith('.')], 'no temporary file left'
    monkeypatch.setattr(segsr.api, 'check_budget', budget)
    written = upscaler.upscale_file(source, out, overwrite=True, **OPTIONS, **evaluation)
    assert [p.name for p in written] == ['scene.tif', theirs.name, 'scene_consistency.json']
    assert read(theirs).shape == (1, 80, 104)


def test_run_never_takes_its_output_folder_for_inputs(toy, tmp_path):
    tree = tmp_path / 'scenes'
    (tree / 'sub').mkdir(parents=True)
    for path in (tree / 'a.png', tree / 'sub' / 'b.png'):
        cv2.imwrite(str(path), np.full((12, 16, 3), 90, np.uint8))
    upscaler = segsr.load(toy, device='cpu')
    for _ in range(2):
        report = upscaler.run(tree, tree / 'results', recursive=True, overwrite=True)
        assert sorted(p.relative_to(tree / 'results').as_posix() for p in report.written) == ['a.png', 'sub/b.png']
