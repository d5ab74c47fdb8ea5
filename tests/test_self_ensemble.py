"""Self-ensemble: the mean over the 8 flips and rotations, in test.py, segsr-infer (tiled) and with guidance."""

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY_EDSR, eval_options, write_yaml

from segsr import evaluation
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.infer import main as infer_main
from segsr.self_ensemble import TRANSFORMS, GuidedSelfEnsemble, SelfEnsemble, transform

TINY_SEGSR = {
    'type': 'SEGSR', 'upscale': 2,
    'backbone': {'img_size': 8, 'window_size': 4, 'embed_dim': 12, 'depths': [1, 1], 'num_heads': [2, 2],
                 'compress_ratio': 3, 'squeeze_factor': 4, 'mlp_ratio': 2},
    'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': None, 'lora': {'rank': 0}},
    'slm': {'num_local': 2, 'num_heads': 4}, 'lmm': {'hidden': 8},
}


def build(options: dict, seed: int = 0) -> torch.nn.Module:
    from basicsr.archs import build_network

    torch.manual_seed(seed)
    return build_network(dict(options)).eval()


@torch.no_grad()
def test_ensembled_output_follows_every_transform_of_the_input():
    network = build({**TINY_EDSR, 'upscale': 2})
    ensemble = SelfEnsemble(network)
    x = torch.rand(1, 3, 12, 20)
    reference = ensemble(x)
    assert reference.shape == (1, 3, 24, 40)
    assert not torch.allclose(reference, network(x), atol=1e-4)  # the plain network is not equivariant
    for mirror, turns in TRANSFORMS:
        torch.testing.assert_close(ensemble(transform(x, mirror, turns)), transform(reference, mirror, turns),
                                   atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_an_equivariant_network_is_left_unchanged():
    network = torch.nn.Upsample(scale_factor=2, mode='nearest')
    x = torch.rand(2, 3, 5, 7)
    torch.testing.assert_close(SelfEnsemble(network)(x), network(x))


@torch.no_grad()
def test_segsr_guidance_is_recomputed_per_transform_and_mapped_back():
    network = build(TINY_SEGSR)
    calls = []
    network.sfem.register_forward_hook(lambda module, args, output: calls.append(tuple(args[0].shape[-2:])))
    x = torch.rand(1, 3, 12, 20)
    image, maps = GuidedSelfEnsemble(network)(x, return_maps=True)
    assert sorted(set(calls)) == [(12, 20), (20, 12)] and len(calls) == len(TRANSFORMS)
    assert image.shape == (1, 3, 24, 40)
    assert len(maps) == 2 and all(m.shape == (1, 2, 12, 20) for m in maps)
    turned_image, turned_maps = GuidedSelfEnsemble(network)(transform(x, True, 1), return_maps=True)
    torch.testing.assert_close(turned_image, transform(image, True, 1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(turned_maps[0], transform(maps[0], True, 1), atol=1e-4, rtol=1e-4)


def test_infer_self_ensemble_per_tile_commutes_with_mirroring(tmp_path):
    network = build({**TINY_EDSR, 'upscale': 2})
    weights = tmp_path / 'edsr.pth'
    torch.save({'params_ema': network.state_dict(), 'network_g': {**TINY_EDSR, 'upscale': 2}}, weights)
    rgb = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), rgb)
    cv2.imwrite(str(tmp_path / 'b.png'), rgb[:, ::-1])
    outputs = {}
    for name, flags in (('plain', []), ('ensemble', ['--self-ensemble'])):
        infer_main(['--weights', str(weights), '--input', str(tmp_path / '*.png'), '--output', str(tmp_path / name),
                    '--tile', '24', '--overlap', '0', '--device', 'cpu', *flags])
        a, b = (cv2.imread(str(tmp_path / name / f'{n}.png')).astype(int) for n in 'ab')
        outputs[name] = np.abs(a - b[:, ::-1]).max()
    assert outputs['ensemble'] <= 1 < outputs['plain']
    infer_main(['--weights', str(weights), '--input', str(tmp_path / 'a.png'), '--output', str(tmp_path / 'tiled'),
                '--tile', '8', '--overlap', '4', '--device', 'cpu', '--self-ensemble'])
    tiled = cv2.imread(str(tmp_path / 'tiled' / 'a.png')).astype(int)
    assert tiled.shape == (48, 48, 3) and np.abs(tiled - cv2.imread(str(tmp_path / 'ensemble' / 'a.png'))).mean() < 2


@pytest.mark.parametrize('ensemble', [False, True])
def test_test_py_names_the_self_ensemble_in_its_protocol(demo_data, tmp_path, ensemble):
    network = build(TINY_EDSR)
    weights = tmp_path / 'edsr.pth'
    torch.save({'params_ema': network.state_dict()}, weights)
    options = eval_options(demo_data, 'se', weights)
    options['val']['self_ensemble'] = ensemble
    evaluation.main(['-opt', str(write_yaml(tmp_path / 'test.yml', options)), '--root', str(tmp_path)])
    payload = json.loads((tmp_path / 'results' / 'se' / 'demo_val.json').read_text())
    assert payload['protocol']['self_ensemble'] is ensemble
    assert ('x8 self-ensemble' in payload['protocol']['text']) is ensemble
    assert np.isfinite(payload['average']['psnr'])
