"""Multi-band networks in inference: ONNX export, tiling, self-ensemble and segsr-infer's band choice."""

import copy
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from raster_fakes import smooth, toy_checkpoint, write_raster
from test_infer_tiling import run_tiled

import segsr  # noqa: F401  (registers the archs)
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.export import main as export_main
from segsr.infer import main as infer_main
from segsr.inference.execution.engine import TileUpscaler
from segsr.self_ensemble import TRANSFORMS, GuidedSelfEnsemble, transform, with_self_ensemble
from segsr.weights.network import load_network

BANDS = 4
HAT_BACKBONE = {'img_size': 16, 'embed_dim': 12, 'depths': [2], 'num_heads': [3], 'window_size': 4,
                'compress_ratio': 3, 'squeeze_factor': 4, 'mlp_ratio': 2.0, 'in_chans': BANDS}
EDSR_BACKBONE = {'num_in_ch': BANDS, 'num_out_ch': BANDS, 'num_feat': 8, 'num_block': 1, 'num_stages': 1}


def network_options(kind: str, clip_file: Path) -> dict:
    guidance = {'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'rgb_bands': [3, 2, 1],
                         'display_range': [0, 0.8], 'lora': {'rank': 2, 'alpha': 2, 'dropout': 0.0}},
                'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}}
    return copy.deepcopy({
        'HAT': {'type': 'HAT', 'upscale': 2, **HAT_BACKBONE},
        'SEGSR': {'type': 'SEGSR', 'upscale': 2, 'backbone': HAT_BACKBONE, **guidance},
        'StagedEDSR': {'type': 'StagedEDSR', 'upscale': 2, **EDSR_BACKBONE},
    }[kind])


def build(options: dict, seed: int = 0) -> torch.nn.Module:
    """The network with every trainable weight (LoRA included) drawn at random, as after some training."""
    from basicsr.archs import build_network

    torch.manual_seed(seed)
    network = build_network(copy.deepcopy(options))
    with torch.no_grad():
        for parameter in network.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.05)
    return network.eval()


def write_checkpoint(path: Path, options: dict) -> Path:
    torch.save({'params_ema': build(options).state_dict(), 'network_g': options}, path)
    return path


# --- ONNX ----------------------------------------------------------------------------------------------------


def test_onnx_export_of_a_four_band_segsr_matches_torch(clip_file, tmp_path):
    """The 4-band HAT backbone and CLIP's band choice and display range, in one graph."""
    onnxruntime = pytest.importorskip('onnxruntime')
    weights = write_checkpoint(tmp_path / 'net_g.pth', network_options('SEGSR', clip_file))
    export_main(['--weights', str(weights), '--output', str(tmp_path / 'model.onnx')])
    session = onnxruntime.InferenceSession(str(tmp_path / 'model.onnx'), providers=['CPUExecutionProvider'])
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata['segsr.in_channels'] == str(BANDS)
    multiple = int(metadata['segsr.size_multiple'])
    network, _ = load_network(weights)
    lr = torch.rand(2, BANDS, multiple * 2, multiple * 3)
    with torch.no_grad():
        expected = network(lr).numpy()
    found = session.run(None, {'lr': lr.numpy()})[0]
    assert found.shape == expected.shape == (2, BANDS, multiple * 4, multiple * 6)
    np.testing.assert_allclose(found, expected, atol=1e-4)

    source, _ = scene(tmp_path / 'rgbn.tif', BANDS)
    common = ['--input', str(source), '--tile', '16', '--overlap', '8']
    infer_main(['--weights', str(weights), '--output', str(tmp_path / 'torch'), '--device', 'cpu', *common])
    infer_main(['--onnx', str(tmp_path / 'model.onnx'), '--output', str(tmp_path / 'onnx'), *common])
    with rasterio.open(tmp_path / 'torch' / 'rgbn.tif') as a, rasterio.open(tmp_path / 'onnx' / 'rgbn.tif') as b:
        with_torch, with_onnx = a.read().astype(int), b.read().astype(int)
    assert with_onnx.shape == with_torch.shape == (BANDS, 48, 48)
    assert np.abs(with_onnx - with_torch).max() <= 2


# --- tiling and self-ensemble --------------------------------------------------------------------------------


@pytest.mark.parametrize('ensemble', [False, True])
def test_tiled_four_band_output_equals_the_whole_scene(ensemble):
    """StagedEDSR's receptive radius (about 6 LR pixels) fits in overlap // 2: tiles see all they need."""
    network = build(network_options('StagedEDSR', Path()))
    network = with_self_ensemble(network) if ensemble else network
    upscaler = TileUpscaler(network, torch.device('cpu'), bf16=False, guidance=False)
    image = np.random.default_rng(0).random((BANDS, 37, 50), dtype=np.float32)
    overlap = 16
    tiled = run_tiled(image, upscaler, 2, 16, overlap, batch=2)
    padded = np.pad(image, ((0, 0), (overlap, overlap), (overlap, overlap)), mode='reflect')
    whole = upscaler(padded[None])[0][:, overlap * 2 : -overlap * 2, overlap * 2 : -overlap * 2]
    assert tiled.shape == whole.shape == (BANDS, 74, 100)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


@torch.no_grad()
def test_self_ensemble_of_a_four_band_network_follows_every_transform():
    network = build(network_options('StagedEDSR', Path()))
    ensemble = with_self_ensemble(network)
    x = torch.rand(1, BANDS, 12, 20)
    reference = ensemble(x)
    assert reference.shape == (1, BANDS, 24, 40)
    assert not torch.allclose(reference, network(x), atol=1e-4)
    for mirror, turns in TRANSFORMS:
        torch.testing.assert_close(ensemble(transform(x, mirror, turns)), transform(reference, mirror, turns),
                                   atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_guided_self_ensemble_of_a_four_band_segsr_maps_image_and_guidance_back(clip_file):
    network = build(network_options('SEGSR', clip_file))
    ensemble = with_self_ensemble(network)
    assert isinstance(ensemble, GuidedSelfEnsemble)
    x = torch.rand(1, BANDS, 12, 20)
    image, maps = ensemble(x, return_maps=True)
    assert image.shape == (1, BANDS, 24, 40) and all(m.shape == (1, 1, 12, 20) for m in maps)
    turned_image, turned_maps = ensemble(transform(x, True, 1), return_maps=True)
    torch.testing.assert_close(turned_image, transform(image, True, 1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(turned_maps[0], transform(maps[0], True, 1), atol=1e-4, rtol=1e-4)


# --- segsr-infer on multi-band rasters ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def toy4(tmp_path_factory) -> Path:
    """A near-identity 4-band network that keeps every band's values in its place."""
    return toy_checkpoint(tmp_path_factory.mktemp('toy4') / 'toy4.pth', channels=BANDS)


def scene(path: Path, bands: int) -> tuple[Path, np.ndarray]:
    data = np.stack([np.rint(1000 * (band + 1) * smooth(24, 24, seed=band)) for band in range(bands)])
    data = data.astype(np.uint16)
    return write_raster(path, data), data


@pytest.mark.parametrize('bands', [None, '4,3,2,1'])
def test_a_four_band_raster_goes_through_a_four_band_network_band_for_band(toy4, tmp_path, bands):
    source, data = scene(tmp_path / 'rgbn.tif', BANDS)
    choice = ['--bands', bands] if bands else []
    infer_main(['--weights', str(toy4), '--input', str(source), '--output', str(tmp_path / 'out'), *choice,
                '--tile', '16', '--overlap', '8', '--device', 'cpu'])
    with rasterio.open(tmp_path / 'out' / 'rgbn.tif') as dataset:
        out = dataset.read().astype(float)
    assert out.shape == (BANDS, 48, 48)
    for band in range(BANDS):
        assert out[band].mean() == pytest.approx(data[band].mean(), rel=0.03), f'band {band + 1} in its place'


@pytest.mark.parametrize(('bands', 'given'), [(6, []), (4, ['--bands', '1']), (4, ['--bands', 'each']),
                                              (4, ['--bands', '1,2,3'])])
def test_a_band_count_other_than_the_networks_is_one_line(toy4, tmp_path, capsys, bands, given):
    source, _ = scene(tmp_path / 'scene.tif', bands)
    with pytest.raises(SystemExit):
        infer_main(['--weights', str(toy4), '--input', str(source), '--output', str(tmp_path / 'out'), *given])
    lines = [line for line in capsys.readouterr().err.splitlines() if 'scene.tif' in line]
    count = 1 if given[-1:] in (['1'], ['each']) else 3 if given else bands
    assert len(lines) == 1
    assert f'gives {count} band(s) to a network that takes 4: it was trained on 4 bands' in lines[0]
    assert '--bands 1,2,3,4' in lines[0]
    assert not (tmp_path / 'out' / 'scene.tif').exists()
