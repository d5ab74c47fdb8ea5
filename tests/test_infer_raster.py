"""Rasters keep their values and metadata through inference: no clipping, NaN and classes handled, every band,
COG and VRT output/input, folder runs that survive a bad file, stale partial files and SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from raster_fakes import (
    dem_with_negatives,
    reflectance_with_bright_roof,
    smooth,
    toy_checkpoint,
    vrt_of,
    write_raster,
)
from rasterio.enums import ColorInterp

import segsr
from segsr.infer import main
from segsr.inference.execution import scene
from segsr.inference.io.manifest import MANIFEST_NAME
from segsr.utils.files import remove_stale_temp_files, temporary_path

TILING = ('--tile', 32, '--overlap', 8)


@pytest.fixture(scope='module')
def toy(tmp_path_factory) -> Path:
    return toy_checkpoint(tmp_path_factory.mktemp('toy') / 'toy_x2.pth')


def infer(*args) -> None:
    main([str(a) for a in args])


def one_line_error(*args) -> str:
    with pytest.raises(SystemExit) as excinfo:
        infer(*args)
    message = str(excinfo.value.code)
    assert message.startswith('error: ') and '\n' not in message
    return message


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


def test_bright_values_beyond_the_percentile_are_not_clipped(toy, tmp_path):
    data = reflectance_with_bright_roof()
    assert data.max() > 1.5 * np.percentile(data, 99.5), 'the roof must lie far above the 99.5th percentile'
    source = write_raster(tmp_path / 'refl.tif', data)
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', *TILING)
    out = read(tmp_path / 'out' / 'refl.tif')
    assert out.dtype == np.uint16
    assert abs(int(out.max()) - int(data.max())) <= 0.1 * data.max()
    assert (out == out.max()).sum() <= 4, 'no plateau of clipped pixels at the maximum'


def test_dem_keeps_negative_heights_and_its_range(toy, tmp_path):
    data = dem_with_negatives()
    source = write_raster(tmp_path / 'dem.tif', data)
    for stretch in ('auto', 'range'):
        infer('--weights', toy, '--input', source, '--output', tmp_path / stretch, '--stretch', stretch, *TILING)
        out = read(tmp_path / stretch / 'dem.tif')
        assert out.dtype == np.float32 and out.min() < 0
        assert out.min() == pytest.approx(data.min(), abs=1.5) and out.max() == pytest.approx(data.max(), abs=1.5)


def test_range_stretch_on_int16_uses_the_data_range(toy, tmp_path):
    data = np.rint(-500 + 3000 * smooth(48, 48)).astype(np.int16)[None]
    source = write_raster(tmp_path / 'signed.tif', data)
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--stretch', 'range', *TILING)
    out = read(tmp_path / 'out' / 'signed.tif').astype(float)
    assert out.mean() == pytest.approx(data.mean(), rel=0.02)
    assert out.min() == pytest.approx(data.min(), abs=100) and out.max() == pytest.approx(data.max(), abs=100)


def test_nan_without_nodata_tag_stays_a_few_pixels(toy, tmp_path):
    data = dem_with_negatives(48)
    data[0, 20, 30] = np.nan
    data[0, 5, 5] = np.inf
    source = write_raster(tmp_path / 'holes.tif', data)
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', *TILING)
    out = read(tmp_path / 'out' / 'holes.tif')[0]
    assert (~np.isfinite(out)).sum() == 2 * 4, 'each non-finite LR pixel becomes its 2x2 output pixels only'
    assert np.isnan(out[40:42, 60:62]).all() and np.isnan(out[10:12, 10:12]).all()


def categorical(path: Path, kind: str) -> Path:
    data = np.random.default_rng(0).integers(0, 14, (1, 32, 32), dtype=np.uint8)
    write_raster(path, data)
    with rasterio.open(path, 'r+') as dataset:
        if kind == 'palette':
            dataset.write_colormap(1, {i: (i * 18, 255 - i * 18, 0, 255) for i in range(14)})
        elif kind == 'thematic':
            dataset.update_tags(1, LAYER_TYPE='thematic')
        else:
            dataset.set_band_description(1, 'Land cover classes')
    return path


@pytest.mark.parametrize(('kind', 'words'), [('palette', 'colour table'), ('thematic', 'thematic'),
                                             ('described', 'Land cover classes')])
def test_categorical_rasters_are_refused_unless_forced(toy, tmp_path, kind, words):
    source = categorical(tmp_path / 'classes.tif', kind)
    message = one_line_error('--weights', toy, '--input', source, '--output', tmp_path / 'out')
    assert words in message and '--allow-categorical' in message
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())
    if kind == 'palette':
        infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--allow-categorical')
        assert read(tmp_path / 'out' / 'classes.tif').shape == (1, 64, 64)


def six_band_scene(path: Path) -> tuple[Path, np.ndarray]:
    data = np.stack([np.rint(1000 * (band + 1) * smooth(40, 40, seed=band)) for band in range(6)]).astype(np.uint16)
    return write_raster(path, data), data


@pytest.mark.parametrize('bands', [('3,2,1', '4,5,6'), ('each',)])
def test_every_band_goes_through_in_one_run_in_input_order(toy, tmp_path, bands):
    source, data = six_band_scene(tmp_path / 'landsat.tif')
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--bands', *bands, *TILING)
    out = read(tmp_path / 'out' / 'landsat.tif').astype(float)
    assert out.shape == (6, 80, 80)
    for band in range(6):
        assert out[band].mean() == pytest.approx(data[band].mean(), rel=0.03), f'band {band + 1} in its place'


def test_metadata_is_carried_and_provenance_added(toy, tmp_path):
    source, _ = six_band_scene(tmp_path / 'meta.tif')
    with rasterio.open(source, 'r+') as dataset:
        dataset.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red] + [ColorInterp.undefined] * 3
        for band in range(1, 7):
            dataset.set_band_description(band, f'B{band} reflectance')
            dataset.set_band_unit(band, 'reflectance')
            dataset.update_tags(band, WAVELENGTH=str(400 + 100 * band), STATISTICS_MAXIMUM='9')
        dataset.scales = [0.0001] * 6
        dataset.offsets = [-0.1] * 6
        dataset.update_tags(SENSOR='OLI', AREA_OR_POINT='Point')
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--bands', '4,3,2', *TILING)
    with rasterio.open(tmp_path / 'out' / 'meta.tif') as sr:
        assert sr.descriptions == ('B2 reflectance', 'B3 reflectance', 'B4 reflectance')
        assert sr.units == ('reflectance',) * 3
        assert sr.scales == (0.0001,) * 3 and sr.offsets == (-0.1,) * 3
        assert sr.tags(1)['WAVELENGTH'] == '600' and 'STATISTICS_MAXIMUM' not in sr.tags(1)
        assert sr.colorinterp == (ColorInterp.green, ColorInterp.red, ColorInterp.undefined), 'no false RGB claim'
        tags = sr.tags()
        assert tags['SENSOR'] == 'OLI' and tags['AREA_OR_POINT'] == 'Point'
        assert tags['SEGSR_VERSION'] == segsr.__version__ and tags['SEGSR_WEIGHTS'] == toy.name
        assert (tags['SEGSR_SCALE'], tags['SEGSR_TILE'], tags['SEGSR_OVERLAP']) == ('2', '32', '8')


def test_cog_output_is_a_valid_cog_with_overviews(toy, tmp_path):
    data = np.rint(60000 * smooth(300, 300)).astype(np.uint16)[None]
    source = write_raster(tmp_path / 'big.tif', data, nodata=0)
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--cog', '--compress', 'zstd',
          '--tile', 64, '--overlap', 8)
    with rasterio.open(tmp_path / 'out' / 'big.tif') as cog:
        assert cog.tags(ns='IMAGE_STRUCTURE')['LAYOUT'] == 'COG'
        assert cog.tags(ns='IMAGE_STRUCTURE')['COMPRESSION'] == 'ZSTD'
        assert cog.overviews(1), 'overviews present'
        assert cog.nodata == 0 and cog.tags()['SEGSR_SCALE'] == '2' and cog.shape == (600, 600)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['big.tif', MANIFEST_NAME], 'no staging file left'


def test_plain_tiff_compress_and_blocksize(toy, tmp_path):
    source = write_raster(tmp_path / 'a.tif', np.rint(5000 * smooth(40, 40)).astype(np.uint16)[None])
    infer('--weights', toy, '--input', source, '--output', tmp_path / 'out', '--compress', 'lzw', '--blocksize', 64,
          *TILING)
    with rasterio.open(tmp_path / 'out' / 'a.tif') as sr:
        assert sr.compression.name == 'lzw' and sr.block_shapes[0] == (64, 64)


def test_vrt_and_vsizip_inputs(toy, tmp_path):
    source, data = six_band_scene(tmp_path / 'scene.tif')
    vrt = vrt_of(source, tmp_path / 'mosaic.vrt', 6, 40, 40)
    infer('--weights', toy, '--input', vrt, '--output', tmp_path / 'out', '--bands', 'each', *TILING)
    with rasterio.open(tmp_path / 'out' / 'mosaic.tif') as sr:
        assert sr.driver == 'GTiff' and sr.count == 6 and sr.crs.to_epsg() == 32633
    with zipfile.ZipFile(tmp_path / 'scenes.zip', 'w') as archive:
        archive.write(source, 'inner/scene.tif')
    infer('--weights', toy, '--input', f'/vsizip/{tmp_path}/scenes.zip/inner/scene.tif', '--output', tmp_path / 'zip',
          '--bands', '1,2,3', *TILING)
    assert read(tmp_path / 'zip' / 'scene.tif').shape == (3, 80, 80)


def test_folder_with_a_bad_file_in_the_middle_runs_the_others(toy, tmp_path, capsys):
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in ('a.tif', 'c.tif'):
        write_raster(folder / name, np.rint(4000 * smooth(24, 24)).astype(np.uint16)[None])
    (folder / 'b.tif').write_bytes(b'not a tiff')
    write_raster(folder / '.hidden.tif', np.zeros((1, 8, 8), np.uint16))
    message = one_line_error('--weights', toy, '--input', folder, '--output', tmp_path / 'out', *TILING)
    assert '1 input(s) failed' in message
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a.tif', 'c.tif', MANIFEST_NAME]
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith('failed: ')]
    assert len(failed) == 1 and 'b.tif' in failed[0]


def test_inputs_are_checked_before_the_model_loads(tmp_path):
    write_raster(tmp_path / 'a.tif', np.zeros((1, 8, 8), np.uint16))
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'a.tif').write_bytes(b'earlier result')
    missing = tmp_path / 'never_loaded.pth'
    message = one_line_error('--weights', missing, '--input', tmp_path / 'a.tif', '--output', tmp_path / 'out')
    assert 'exists' in message and '--overwrite' in message
    assert (tmp_path / 'out' / 'a.tif').read_bytes() == b'earlier result'
    message = one_line_error('--weights', missing, '--input', tmp_path / 'a.tif', '--output', tmp_path / 'o2',
                             '--device', 'tpu')
    assert '--device' in message


def test_recursive_folder_mirrors_the_tree(toy, tmp_path):
    for relative in ('2021/a.tif', '2022/north/b.tif', '.cache/c.tif'):
        (tmp_path / 'in' / relative).parent.mkdir(parents=True, exist_ok=True)
        write_raster(tmp_path / 'in' / relative, np.rint(4000 * smooth(16, 16)).astype(np.uint16)[None])
    infer('--weights', toy, '--input', tmp_path / 'in', '--output', tmp_path / 'out', '--recursive', *TILING)
    written = sorted(str(p.relative_to(tmp_path / 'out')) for p in (tmp_path / 'out').rglob('*.tif'))
    assert written == ['2021/a.tif', '2022/north/b.tif']


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    stale = temporary_path(tmp_path / 'scene.tiled.tif', dead_pid())
    live = temporary_path(tmp_path / 'other.tif', os.getppid())
    temp = temporary_path(tmp_path / 'scene.tif', dead_pid())
    kept = tmp_path / 'scene.tif'
    for path in (stale, live, temp, kept):
        path.write_bytes(b'x')
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted([stale, temp])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, kept.name])


def test_sigterm_during_inference_removes_the_partial_file(toy, tmp_path, monkeypatch):
    source = write_raster(tmp_path / 'long.tif', np.rint(4000 * smooth(64, 64)).astype(np.uint16)[None])
    out = tmp_path / 'out'
    partials = []
    tiled = scene.upscale_tiled

    def terminated_midway(*args, **kwargs):
        for index, block in enumerate(tiled(*args, **kwargs)):
            if index == 1:
                partials.extend(out.glob('.long.tif.segsr-partial-*'))
                os.kill(os.getpid(), signal.SIGTERM)
            yield block

    monkeypatch.setattr(scene, 'upscale_tiled', terminated_midway)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit, match='SIGTERM'):
        infer('--weights', toy, '--input', source, '--output', out, '--tile', 16, '--overlap', 4)
    assert partials, 'the run was writing when the signal came'
    assert [p.name for p in out.iterdir()] == [MANIFEST_NAME], 'only the manifest of the stopped run'
    assert [entry['status'] for entry in json.loads((out / MANIFEST_NAME).read_text())['inputs']] == ['pending']
    assert signal.getsignal(signal.SIGTERM) is handler, 'the handler is only held while inference runs'
