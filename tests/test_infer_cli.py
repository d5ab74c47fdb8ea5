"""Inference end to end: checkpoints, PNG/TIFF/GeoTIFF in and out, guidance maps, one-line errors."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.transform import Affine

import segsr  # noqa: F401  (basicsr compat and registration)
from segsr.data.geotiff import block_side
from segsr.infer import main
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.scene import RadiometryOptions, TilingOptions, upscale_file
from segsr.inference.io.manifest import MANIFEST_NAME
from segsr.nn.info import NetworkInfo

ROOT = Path(__file__).resolve().parents[1]
EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 2}


class GuidedToySR(torch.nn.Module):
    """A network that, like SEGSR, can return one guidance map per stage at LR resolution."""

    def __init__(self, upscale: int = 2, stages: int = 2):
        super().__init__()
        self.upscale = upscale
        self.network_info = NetworkInfo(scale=upscale, in_chans=3, out_chans=3, map_stages=(1,) * stages)
        self.body = torch.nn.Conv2d(3, 3 * upscale**2, 3, padding=1)
        self.maps = torch.nn.Conv2d(3, stages, 1)

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        image = torch.nn.functional.pixel_shuffle(self.body(x), self.upscale)
        return (image, list(self.maps(x).unbind(1))) if return_maps else image


@pytest.fixture(scope='module')
def guided_arch() -> str:
    from basicsr.utils.registry import ARCH_REGISTRY  # after segsr has patched basicsr

    if 'GuidedToySR' not in ARCH_REGISTRY:
        ARCH_REGISTRY.register()(GuidedToySR)
    return 'GuidedToySR'


def save_checkpoint(path: Path, options: dict | None, seed: int = 0, with_options: bool = True) -> Path:
    from basicsr.archs import build_network  # after segsr has patched basicsr

    torch.manual_seed(seed)
    network = build_network(dict(options))
    content = {'params': network.state_dict(), 'params_ema': network.state_dict()}
    if with_options:
        content['network_g'] = options
    torch.save(content, path)
    return path


@pytest.fixture(scope='module')
def weights(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp('ckpt') / 'edsr_x2.pth', EDSR)


def write_geotiff(path: Path, data: np.ndarray, nodata: float | None, crs='EPSG:32633') -> Path:
    profile = {
        'driver': 'GTiff',
        'height': data.shape[1],
        'width': data.shape[2],
        'count': data.shape[0],
        'dtype': data.dtype.name,
        'crs': crs,
        'transform': Affine.translation(500000, 5000000) @ Affine.scale(10, -10),  # 10 m pixels
        'nodata': nodata,
    }
    with rasterio.open(path, 'w', **profile) as dataset:
        dataset.write(data)
    return path


def multispectral(height: int = 70, width: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """uint16, 4 bands of reflectance-like values with a nodata hole touching valid data."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    data = 800 + 600 * np.sin(x / 7)[None] * np.cos(y / 5)[None] + rng.integers(0, 300, (4, height, width))
    data = data.astype(np.uint16)
    valid = np.ones((height, width), bool)
    valid[20:45, 30:60] = False
    return data, valid


def infer(*args: str) -> None:
    main([str(a) for a in args])


def one_line_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as excinfo:
        infer(*args)
    message = str(excinfo.value.code)
    assert message.startswith('error: ') and '\n' not in message
    return message


def test_geotiff_keeps_crs_scaled_transform_dtype_and_nodata(weights, tmp_path):
    data, valid = multispectral()
    data[:, ~valid] = 0
    source = write_geotiff(tmp_path / 'scene.tif', data, nodata=0)
    infer('--weights', weights, '--input', source, '--output', tmp_path / 'out', '--tile', 32, '--overlap', 8,
          '--bands', '4,3,2', '--batch', 3)

    with rasterio.open(source) as lr, rasterio.open(tmp_path / 'out' / 'scene.tif') as sr:
        assert sr.crs == lr.crs and sr.crs.to_epsg() == 32633
        assert sr.transform.almost_equals(lr.transform @ Affine.scale(0.5))
        assert (sr.width, sr.height, sr.count) == (2 * lr.width, 2 * lr.height, 3)
        assert sr.dtypes == ('uint16',) * 3 and sr.nodata == 0
        assert sr.profile['tiled'] and sr.compression is not None
        assert sr.bounds == pytest.approx(lr.bounds)
        out = sr.read()
    valid_hr = valid.repeat(2, 0).repeat(2, 1)
    assert (out[:, ~valid_hr] == 0).all(), 'nodata pixels stay nodata'
    assert (out[:, valid_hr] != 0).all(), 'valid pixels never read as nodata'


def test_nodata_does_not_bleed_into_valid_pixels(weights, tmp_path):
    """The value stored under nodata must not change any valid output pixel."""
    data, valid = multispectral()
    outputs = []
    for fill in (0, 65535):
        data[:, ~valid] = fill
        folder = tmp_path / str(fill)
        folder.mkdir()
        source = write_geotiff(folder / 'scene.tif', data, nodata=fill)
        infer('--weights', weights, '--input', source, '--output', folder / 'out', '--tile', 32, '--overlap', 8,
              '--bands', '1,2,3', '--stretch', 'range')
        with rasterio.open(folder / 'out' / 'scene.tif') as sr:
            outputs.append(sr.read())
    valid_hr = valid.repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(outputs[0][:, valid_hr], outputs[1][:, valid_hr])


@pytest.mark.parametrize('tile', [40, 27])
def test_streamed_tiff_equals_in_memory_png(weights, tmp_path, capsys, tile):
    """Windowed reading and block writing give the same pixels as a whole 16-bit PNG, whether or not
    the output cells (tile x scale) fill whole TIFF blocks."""
    data, _ = multispectral(150, 60)
    rgb = data[:3]
    tiff = write_geotiff(tmp_path / 'scene.tif', rgb, nodata=None)
    cv2.imwrite(str(tmp_path / 'scene.png'), cv2.cvtColor(rgb.transpose(1, 2, 0), cv2.COLOR_RGB2BGR))
    for source in (tiff, tmp_path / 'scene.png'):
        infer('--weights', weights, '--input', source, '--output', tmp_path / 'out', '--tile', tile, '--overlap', 8,
              '--stretch', 'range')
    with rasterio.open(tmp_path / 'out' / 'scene.tif') as sr:
        streamed = sr.read()
        blocks = sr.block_shapes[0]
    whole = cv2.cvtColor(cv2.imread(str(tmp_path / 'out' / 'scene.png'), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(streamed, whole.transpose(2, 0, 1))
    fitting = block_side(tile * 2)
    if fitting is None:
        assert 'no TIFF block size divides' in capsys.readouterr().err
    else:
        assert blocks == (fitting, fitting) and (tile * 2) % fitting == 0


@pytest.mark.parametrize('cell', [1024, 768, 400, 80, 300, 54])
def test_block_side_divides_the_cell_or_says_none_can(cell):
    side = block_side(cell)
    candidates = [s for s in range(64, 2049, 16) if cell % s == 0]
    if side is None:
        assert not candidates
    else:
        assert side % 16 == 0 and cell % side == 0
        assert abs(side - 256) == min(abs(s - 256) for s in candidates)


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_plain_tiff_gets_no_georeference(weights, tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (3, 20, 30), dtype=np.uint8)
    with rasterio.open(tmp_path / 'photo.tif', 'w', driver='GTiff', height=20, width=30, count=3, dtype='uint8') as d:
        d.write(rgb)
    infer('--weights', weights, '--input', tmp_path / 'photo.tif', '--output', tmp_path / 'out')
    with rasterio.open(tmp_path / 'out' / 'photo.tif') as sr:
        assert sr.crs is None and sr.transform.is_identity and sr.shape == (40, 60) and sr.dtypes[0] == 'uint8'


def test_rgba_png_alpha_is_resized_separately(weights, tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (24, 20, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'icon.png'), rgba)
    infer('--weights', weights, '--input', tmp_path / 'icon.png', '--output', tmp_path / 'out')
    out = cv2.imread(str(tmp_path / 'out' / 'icon.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 40, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 3], cv2.resize(rgba[:, :, 3], (40, 48), interpolation=cv2.INTER_CUBIC))


def test_gray_16bit_comes_back_gray_16bit(weights, tmp_path):
    ramp = np.linspace(0, 60000, 30 * 20).reshape(30, 20).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'gray.png'), ramp)
    infer('--weights', weights, '--input', tmp_path / 'gray.png', '--output', tmp_path / 'out')
    out = cv2.imread(str(tmp_path / 'out' / 'gray.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (60, 40) and out.dtype == np.uint16


def test_folder_and_glob_inputs(weights, tmp_path):
    for name in ('a.png', 'b.jpg'):
        cv2.imwrite(str(tmp_path / name), np.full((12, 10, 3), 128, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    infer('--weights', weights, '--input', tmp_path, '--output', tmp_path / 'folder')
    infer('--weights', weights, '--input', tmp_path / '*.png', '--output', tmp_path / 'glob')
    assert sorted(p.name for p in (tmp_path / 'folder').iterdir()) == ['a.png', 'b.jpg', MANIFEST_NAME]
    assert sorted(p.name for p in (tmp_path / 'glob').iterdir()) == ['a.png', MANIFEST_NAME]


def test_opt_file_rebuilds_a_checkpoint_without_options(tmp_path):
    bare = save_checkpoint(tmp_path / 'bare.pth', EDSR, with_options=False)
    (tmp_path / 'net.yml').write_text(yaml.safe_dump({'network_g': EDSR}))
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((12, 10, 3), 90, np.uint8))
    infer('--weights', bare, '--opt', tmp_path / 'net.yml', '--input', tmp_path / 'a.png', '--output', tmp_path / 'o')
    assert cv2.imread(str(tmp_path / 'o' / 'a.png')).shape == (24, 20, 3)


def test_bf16_autocast_stays_close_to_float32(weights, tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), rgb)
    infer('--weights', weights, '--input', tmp_path / 'a.png', '--output', tmp_path / 'fp32')
    infer('--weights', weights, '--input', tmp_path / 'a.png', '--output', tmp_path / 'bf16', '--bf16')
    full, half = (cv2.imread(str(tmp_path / d / 'a.png')).astype(int) for d in ('fp32', 'bf16'))
    assert np.abs(full - half).mean() < 2


def test_guidance_maps_are_written_on_the_output_grid(guided_arch, tmp_path):
    weights = save_checkpoint(tmp_path / 'guided.pth', {'type': guided_arch, 'upscale': 2, 'stages': 2})
    data, _ = multispectral(40, 50)
    data[:, :4, :6] = 0
    source = write_geotiff(tmp_path / 'scene.tif', data[:3], nodata=0)
    infer('--weights', weights, '--input', source, '--output', tmp_path / 'out', '--tile', 16, '--overlap', 8,
          '--save-guidance')
    with rasterio.open(tmp_path / 'out' / 'scene_guidance.tif') as maps, rasterio.open(source) as lr:
        assert maps.count == 2 and maps.dtypes[0] == 'float32' and maps.shape == (80, 100)
        assert maps.crs == lr.crs and maps.transform.almost_equals(lr.transform @ Affine.scale(0.5))
        assert maps.descriptions == ('stage 1', 'stage 2')
        values = maps.read()
    assert np.isnan(values[:, :8, :12]).all(), 'nodata areas are masked in the maps'
    assert np.isfinite(values[:, 8:]).all() and np.nanstd(values) > 0


def test_guidance_from_a_plain_network_is_refused(weights, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    message = one_line_error(
        capsys, '--weights', weights, '--input', tmp_path / 'a.png', '--output', tmp_path / 'o', '--save-guidance'
    )
    assert 'no guidance maps' in message


def test_unreadable_file(weights, tmp_path, capsys):
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    (tmp_path / 'broken.tif').write_bytes(b'not a tiff')
    for name in ('broken.png', 'broken.tif'):
        message = one_line_error(capsys, '--weights', weights, '--input', tmp_path / name, '--output', tmp_path / 'o')
        assert 'cannot read' in message and name in message


def test_checkpoint_without_options_needs_opt(tmp_path, capsys):
    bare = save_checkpoint(tmp_path / 'bare.pth', EDSR, with_options=False)
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    message = one_line_error(capsys, '--weights', bare, '--input', tmp_path / 'a.png', '--output', tmp_path / 'o')
    assert 'network_g' in message and '--opt' in message


def test_band_out_of_range(weights, tmp_path, capsys):
    data, _ = multispectral(20, 20)
    source = write_geotiff(tmp_path / 'scene.tif', data, nodata=None)
    message = one_line_error(
        capsys, '--weights', weights, '--input', source, '--output', tmp_path / 'o', '--bands', '5,3,2'
    )
    assert 'band 5' in message and '4 bands' in message
    assert not (tmp_path / 'o' / 'scene.tif').exists()


def test_output_over_the_input_is_refused(weights, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((8, 8, 3), 7, np.uint8))
    message = one_line_error(capsys, '--weights', weights, '--input', tmp_path / 'a.png', '--output', tmp_path)
    assert 'overwrite the input' in message
    assert (cv2.imread(str(tmp_path / 'a.png')) == 7).all()


class FailsOnScenes(torch.nn.Module):
    """Passes the size probe, then fails on the first real tile, like a crash mid-scene."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 16:
            raise RuntimeError('out of memory')
        return self.network(x)


@pytest.mark.parametrize('name', ['scene.tif', 'scene.png'])
def test_failure_mid_scene_leaves_no_partial_file(tmp_path, name):
    from basicsr.archs import build_network  # after segsr has patched basicsr

    data, _ = multispectral(40, 40)
    if name.endswith('.tif'):
        write_geotiff(tmp_path / name, data[:3], nodata=None)
    else:
        cv2.imwrite(str(tmp_path / name), data[:3].transpose(1, 2, 0))
    out = tmp_path / 'out'
    out.mkdir()
    (out / name).write_bytes(b'previous result')
    upscaler = TileUpscaler(FailsOnScenes(build_network(EDSR)), torch.device('cpu'), bf16=False, guidance=False)
    with pytest.raises(RuntimeError, match='out of memory'):
        upscale_file(tmp_path / name, out, upscaler, TilingOptions(tile=16, overlap=4), RadiometryOptions())
    assert [p.name for p in out.iterdir()] == [name] and (out / name).read_bytes() == b'previous result'


def test_script_runs_from_a_clone(weights, tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((10, 12, 3), 60, np.uint8))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / 'segsr' / 'infer.py'),
            '--weights',
            str(weights),
            '--input',
            str(tmp_path / 'a.png'),
            '--output',
            str(tmp_path / 'o'),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={'PATH': '/usr/bin:/bin'},
    )
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / 'o' / 'a.png')).shape == (20, 24, 3)
