"""Published models in and out: spandrel's independent HAT, ONNX export and onnxruntime inference."""

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segsr.clip.lora import lora_modules
from segsr.clip.tiny import TINY_CLIP_MODEL, write_tiny_clip_checkpoint
from segsr.export import main as export_main
from segsr.export import psnr
from segsr.infer import main as infer_main
from segsr.weights.network import load_network

spandrel = pytest.importorskip('spandrel')
onnxruntime = pytest.importorskip('onnxruntime')

TINY_HAT = {'type': 'HAT', 'img_size': 16, 'embed_dim': 12, 'depths': [2], 'num_heads': [3], 'window_size': 4,
            'compress_ratio': 3, 'squeeze_factor': 4, 'mlp_ratio': 2.0}
TINY_EDSR = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 4}
LORA = {'rank': 2, 'alpha': 2, 'dropout': 0.0}


@pytest.fixture(scope='module')
def clip_file(tmp_path_factory) -> Path:
    return write_tiny_clip_checkpoint(tmp_path_factory.mktemp('clip') / 'tiny_clip.pt')


def network_options(kind: str, clip_file: Path, scale: int = 2) -> dict:
    hat = {key: value for key, value in TINY_HAT.items() if key != 'type'}
    guidance = {'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': LORA},
                'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}}
    return copy.deepcopy({
        'HAT': {**TINY_HAT, 'upscale': scale},
        'SEGSR': {'type': 'SEGSR', 'upscale': scale, 'backbone': hat, **guidance},
        'GuidedEDSR': {'type': 'GuidedEDSR', 'upscale': scale, 'backbone': TINY_EDSR, **guidance},
    }[kind])


def write_checkpoint(path: Path, options: dict, seed: int = 0) -> Path:
    """A checkpoint as training writes it, its trainable weights (LoRA included) drawn at random."""
    from basicsr.archs import build_network

    torch.manual_seed(seed)
    net = build_network(copy.deepcopy(options))
    with torch.no_grad():
        for parameter in net.parameters():
            if parameter.requires_grad:
                parameter.normal_(0, 0.05)
    torch.save({'params_ema': net.state_dict(), 'network_g': options}, path)
    return path


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_spandrel_loads_a_segsr_hat_checkpoint_and_gives_the_same_output(tmp_path, scale):
    weights = write_checkpoint(tmp_path / 'hat.pth', network_options('HAT', Path(), scale), seed=scale)
    ours, _ = load_network(weights)
    theirs = spandrel.ModelLoader().load_from_file(str(weights))
    assert theirs.architecture.name == 'HAT' and theirs.scale == scale
    lr = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(scale))
    with torch.no_grad():
        expected, found = ours(lr), theirs.model.eval()(lr)
    assert found.shape == expected.shape == (1, 3, 13 * scale, 18 * scale)
    assert torch.allclose(found, expected, atol=1e-5)


def test_inference_folds_lora_adapters_into_the_frozen_weights(tmp_path, clip_file):
    weights = write_checkpoint(tmp_path / 'segsr.pth', network_options('SEGSR', clip_file))
    merged, _ = load_network(weights)
    adapters = lora_modules(merged)
    assert adapters and all(module.merged for module in adapters)
    unmerged, _ = load_network(weights)
    for module in lora_modules(unmerged):
        module.unmerge()
    lr = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        assert torch.allclose(merged(lr), unmerged(lr), atol=1e-5)
        assert torch.equal(merged.state_dict()['sfem.tower.transformer.resblocks.0.attn.lora.q.lora_B'],
                           torch.load(weights)['params_ema']['sfem.tower.transformer.resblocks.0.attn.lora.q.lora_B'])


@pytest.fixture(scope='module', params=['HAT', 'SEGSR', 'GuidedEDSR'])
def exported(request, tmp_path_factory, clip_file) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp(request.param)
    weights = write_checkpoint(folder / 'net_g.pth', network_options(request.param, clip_file))
    export_main(['--weights', str(weights), '--output', str(folder / 'model.onnx')])
    return weights, folder / 'model.onnx'


def test_onnx_graph_matches_torch_at_any_size_and_batch(exported):
    weights, onnx_file = exported
    network, _ = load_network(weights)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    multiple = int(session.get_modelmeta().custom_metadata_map['segsr.size_multiple'])
    for shape in [(1, 3, multiple * 5, multiple * 2), (3, 3, multiple * 2, multiple * 7)]:
        lr = torch.rand(*shape)
        with torch.no_grad():
            expected = network(lr).numpy()
        found = session.run(None, {'lr': lr.numpy()})[0]
        assert found.shape == expected.shape
        assert psnr(found, expected) > 50


def test_infer_with_onnx_matches_infer_with_torch(exported, tmp_path):
    weights, onnx_file = exported
    image = (np.random.default_rng(0).random((37, 29, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'scene.png'), image)
    common = ['--input', str(tmp_path / 'scene.png'), '--tile', '16', '--overlap', '6']
    infer_main(['--weights', str(weights), '--output', str(tmp_path / 'torch'), '--device', 'cpu', *common])
    infer_main(['--onnx', str(onnx_file), '--output', str(tmp_path / 'onnx'), *common])
    with_torch, with_onnx = (cv2.imread(str(tmp_path / kind / 'scene.png')) for kind in ('torch', 'onnx'))
    assert with_onnx.shape == with_torch.shape == (74, 58, 3)
    assert np.abs(with_onnx.astype(int) - with_torch.astype(int)).max() <= 1


def test_onnx_inference_refuses_torch_only_flags_in_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        infer_main(['--onnx', str(tmp_path / 'model.onnx'), '--input', str(tmp_path), '--output', str(tmp_path / 'o'),
                    '--bf16'])
    assert str(stop.value.code) == 'error: --bf16 apply to --weights only; drop them with --onnx'


def test_export_refuses_an_output_that_is_not_onnx(tmp_path):
    with pytest.raises(SystemExit) as stop:
        export_main(['--weights', str(tmp_path / 'w.pth'), '--output', str(tmp_path / 'model.pth')])
    assert str(stop.value.code).startswith('error: --output') and not (tmp_path / 'model.pth').exists()
