"""SEGSR on CPU with a tiny random CLIP saved as a checkpoint and a tiny HAT backbone."""

import copy

import open_clip
import pytest
import torch
from conftest import TINY_HAT

import segsr  # noqa: F401  (registers the archs)
from segsr.archs.segsr_arch import SEGSR
from segsr.archs.sfem_arch import SFEM
from segsr.clip.loader import choose_quick_gelu, encode_texts, load_clip, quiet_open_clip
from segsr.clip.lora import LoRASelfAttention, is_lora_parameter_name
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.utils.errors import SegSRError

LORA = {'rank': 4, 'alpha': 4, 'dropout': 0.0}


def build(clip_file, upscale=4, seed=0, **overrides):
    torch.manual_seed(seed)
    options = {
        'backbone': {'type': 'HAT', **TINY_HAT}, 'upscale': upscale,
        'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': LORA},
        'slm': {'num_heads': 4}, 'lmm': {'hidden': 8},
    }
    options.update(overrides)
    return SEGSR(**copy.deepcopy(options))


def frozen_clip_names(net):
    return [n for n, p in net.named_parameters() if n.startswith('sfem.tower.') and not is_lora_parameter_name(n)]


def test_clip_weights_equal_checkpoint_and_head_count(clip_file):
    net = build(clip_file)
    saved = torch.load(clip_file, weights_only=True)
    tower = {n: p for n, p in net.named_parameters() if n in frozen_clip_names(net)}
    assert len(tower) == len([k for k in saved if k.startswith('visual.')])
    for name, param in tower.items():
        assert torch.equal(param, saved['visual.' + name[len('sfem.tower.'):]]), name
    cfg = open_clip.get_model_config(TINY_CLIP_MODEL)['vision_cfg']
    attentions = [m for m in net.modules() if isinstance(m, LoRASelfAttention)]
    assert len(attentions) == cfg['layers']
    assert {m.num_heads for m in attentions} == {cfg['width'] // cfg['head_width']} == {net.sfem.num_heads}


def test_one_step_trains_exactly_the_learnable_parts(clip_file):
    net = build(clip_file)
    with torch.no_grad():  # adapters as after some training, so both LoRA factors get gradients
        for name, param in net.named_parameters():
            if name.endswith('lora_B'):
                param.normal_(std=0.02)
    trainable = {n: p for n, p in net.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in net.named_parameters() if not p.requires_grad}
    assert set(frozen) == set(frozen_clip_names(net))
    assert all(n.startswith(('backbone.', 'slm.', 'lmm.')) or is_lora_parameter_name(n) for n in trainable)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}

    optimizer = torch.optim.Adam(trainable.values(), lr=1e-3)
    lr = torch.rand(2, 3, 8, 8)
    loss = (net(lr) - torch.rand(2, 3, 32, 32)).abs().mean()
    loss.backward()
    local_grad = net.slm.local_prompts.grad.flatten(0, 1).abs().sum(dim=-1)
    assert net.slm.global_prompt.grad.abs().sum() > 0 and bool((local_grad > 0).all())
    optimizer.step()

    changed = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(trainable)
    assert all(p.grad is None for p in frozen.values())


def test_state_dict_round_trip_and_frozen_clip_left_out(clip_file):
    net = build(clip_file, seed=1).eval()
    state = net.state_dict()
    learnable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert learnable <= set(state)
    assert not set(frozen_clip_names(net)) & set(state)

    other = build(clip_file, seed=2).eval()
    other.load_state_dict(state, strict=True)
    lr = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(net(lr), other(lr))


def test_store_frozen_keeps_clip_in_state_dict(clip_file):
    net = build(clip_file, sfem={'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': LORA,
                                 'store_frozen': True})
    assert set(frozen_clip_names(net)) <= set(net.state_dict())


def test_merged_lora_matches_unmerged(clip_file):
    net = build(clip_file).eval()
    with torch.no_grad():
        for name, param in net.named_parameters():
            if is_lora_parameter_name(name):
                param.normal_(std=0.05)
    state = net.state_dict()
    lr = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        unmerged = net(lr)
        net.merge_lora()
        merged = net(lr)
    assert (unmerged - merged).abs().max() < 1e-5
    merged_state = net.state_dict()
    assert all(torch.allclose(state[k], merged_state[k], atol=1e-6) for k in state)


@pytest.mark.parametrize('scale', [2, 3, 4, 8])
def test_output_shapes_for_every_scale_and_odd_sizes(clip_file, scale):
    net = build(clip_file, upscale=scale).eval()
    lr = torch.rand(1, 3, 7, 10)
    with torch.no_grad():
        out, maps = net(lr, return_maps=True)
    assert out.shape == (1, 3, 7 * scale, 10 * scale)
    assert len(maps) == 2 and all(m.shape == (1, 1, 8, 12) for m in maps)


def test_zero_init_lmm_without_norm_equals_backbone(clip_file):
    net = build(clip_file, lmm={'hidden': 8, 'zero_init': True, 'norm': 'none'}).eval()
    lr = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(net(lr), net.backbone(lr))


def test_backbone_checkpoint_loads_params_ema(clip_file, tmp_path):
    donor = build(clip_file, seed=5)
    path = tmp_path / 'hat.pth'
    torch.save({'params': {}, 'params_ema': donor.backbone.state_dict()}, path)
    net = build(clip_file, seed=6, backbone_checkpoint=str(path))
    for key, value in donor.backbone.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[key], value)
    clip = load_clip(TINY_CLIP_MODEL, str(clip_file))
    assert torch.equal(net.sfem.tower.conv1.weight, clip.model.visual.conv1.weight)


def test_text_init_sets_prompts_and_drops_text_tower(clip_file):
    text_init = {'template': 'an aerial photo of a {}.', 'global': ['farmland', 'harbor'], 'local': ['building']}
    net = build(clip_file, slm={'num_heads': 4, 'text_init': text_init})
    clip = load_clip(TINY_CLIP_MODEL, str(clip_file), with_text=True)
    expected = torch.nn.functional.normalize(
        encode_texts(clip, ['an aerial photo of a farmland.', 'an aerial photo of a harbor.']).mean(0), dim=-1)
    assert torch.allclose(net.slm.global_prompt, expected)
    assert torch.allclose(net.slm.local_prompts[1, 0], encode_texts(clip, ['an aerial photo of a building.'])[0])
    assert not any('token_embedding' in n for n, _ in net.named_parameters())


def test_open_clip_file_loads_by_path_with_quick_gelu_rule(clip_file, tmp_path):
    remote = tmp_path / 'RemoteCLIP-tiny.pt'
    remote.write_bytes(clip_file.read_bytes())
    openai_derived = SFEM(model=TINY_CLIP_MODEL, pretrained=str(remote), lora=LORA)
    plain = SFEM(model=TINY_CLIP_MODEL, pretrained=str(clip_file), lora=LORA)
    forced = SFEM(model=TINY_CLIP_MODEL, pretrained=str(clip_file), quick_gelu=True, lora=LORA)
    activation = lambda sfem: type(sfem.tower.transformer.resblocks[0].mlp.gelu).__name__  # noqa: E731
    assert (openai_derived.quick_gelu, plain.quick_gelu, forced.quick_gelu) == (True, False, True)
    assert (activation(openai_derived), activation(plain)) == ('QuickGELU', 'GELU')
    assert torch.equal(openai_derived.tower.proj, plain.tower.proj)

    openai_cfg = open_clip.get_pretrained_cfg('ViT-B-16', 'openai')
    laion_cfg = open_clip.get_pretrained_cfg('ViT-B-16', 'laion2b_s34b_b88k')
    assert choose_quick_gelu('auto', 'ViT-B-16', openai_cfg, None, False) is True
    assert choose_quick_gelu('auto', 'ViT-B-16', laion_cfg, None, False) is False


def test_plain_vision_state_dict_loads(clip_file, tmp_path):
    saved = torch.load(clip_file, weights_only=True)
    vision_only = tmp_path / 'vision.pth'
    torch.save({k[len('visual.'):]: v for k, v in saved.items() if k.startswith('visual.')}, vision_only)
    sfem = SFEM(model=TINY_CLIP_MODEL, pretrained=str(vision_only), lora=LORA)
    assert torch.equal(sfem.tower.class_embedding, saved['visual.class_embedding'])


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert '\n' not in message
    return message


def test_offline_tag_says_how_to_pass_a_file(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError('Name or service not known')

    monkeypatch.setattr(open_clip, 'download_pretrained', offline)
    with pytest.raises(SegSRError) as excinfo:
        SFEM(model='ViT-B-16', pretrained='openai')
    message = one_line_error(excinfo)
    assert 'cannot be fetched' in message and 'sfem.pretrained' in message and 'local path' in message


def test_unreachable_hub_is_asked_once_and_not_retried(monkeypatch, tmp_path):
    import socket

    from huggingface_hub import constants

    attempts, offline_before = [], constants.HF_HUB_OFFLINE

    def unreachable(address, *args, **kwargs):
        attempts.append(address)
        raise OSError('Network is unreachable')

    monkeypatch.setattr(socket, 'create_connection', unreachable)
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path))  # nothing cached
    with pytest.raises(SegSRError) as excinfo:
        SFEM(model='ViT-B-16', pretrained='openai')
    message = one_line_error(excinfo)
    assert f'{constants.ENDPOINT} cannot be reached' in message and 'local path' in message
    assert len(attempts) == 1
    assert constants.HF_HUB_OFFLINE == offline_before


def test_mismatched_checkpoint_names_the_difference(tmp_path):
    torch.manual_seed(0)
    with quiet_open_clip():
        other = open_clip.create_model(TINY_CLIP_MODEL, vision_cfg={
            'image_size': 32, 'layers': 3, 'width': 48, 'head_width': 16, 'mlp_ratio': 2, 'patch_size': 8})
    path = tmp_path / 'wider.pt'
    torch.save(other.state_dict(), path)
    with pytest.raises(SegSRError) as excinfo:
        SFEM(model=TINY_CLIP_MODEL, pretrained=str(path))
    message = one_line_error(excinfo)
    assert 'width 48 (model 32)' in message and 'layers 3 (model 2)' in message and 'patch' not in message


def test_unsupported_scale_lists_supported_ones(clip_file):
    with pytest.raises(SegSRError) as excinfo:
        build(clip_file, upscale=5)
    assert '[2, 3, 4, 8]' in one_line_error(excinfo)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cpu_and_cuda_agree(clip_file):
    net = build(clip_file).eval()
    lr = torch.rand(1, 3, 12, 9)
    with torch.no_grad():
        cpu = net(lr)
        gpu = net.cuda()(lr.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


def test_visualize_guidance_writes_png(clip_file, tmp_path):
    import cv2
    import numpy as np

    from scripts.visualize_guidance import main

    net = build(clip_file)
    options = {'type': 'SEGSR', 'upscale': 4, 'backbone': {'type': 'HAT', **TINY_HAT},
               'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': LORA},
               'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}}
    checkpoint = tmp_path / 'net_g_latest.pth'
    torch.save({'params': net.state_dict(), 'params_ema': net.state_dict(), 'network_g': options}, checkpoint)
    image = tmp_path / 'hr.png'
    cv2.imwrite(str(image), (np.random.default_rng(0).random((40, 36, 3)) * 255).astype(np.uint8))
    out = main(['--checkpoint', str(checkpoint), '--image', str(image), '--hr', '--out', str(tmp_path / 'g.png')])
    written = cv2.imread(str(out))
    assert written is not None and written.shape[0] > 100 and written.shape[1] > 4 * 100
