"""A checkpoint in the published SeG-SR key layout (written here from its key list, at a tiny size) converts,
loads strictly and runs; the prompts come from a stand-in checkout built under the option file's seed, whose
arch imports basicsr (and registers itself) as the published one does."""

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import segsr  # noqa: F401  (registers the archs)
from segsr.archs.hat_arch import HAT
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.convert.official_segsr import CLIP_PREFIX, clip_key
from segsr.utils.errors import SegSRError
from segsr.weights.network import load_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'scripts'))
import convert_official_segsr  # noqa: E402

# The published network_g (flat HAT keys) at a tiny size.
PUBLISHED_NETWORK = {
    'type': 'SEGSR', 'upscale': 4, 'in_chans': 3, 'img_size': 16, 'window_size': 8, 'compress_ratio': 3,
    'squeeze_factor': 4, 'conv_scale': 0.01, 'overlap_ratio': 0.5, 'img_range': 1.0, 'depths': [1, 1],
    'embed_dim': 12, 'num_heads': [2, 2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle', 'resi_connection': '1conv',
}
SEED = 3
# Tiny CLIP (segsr-tiny-vit): width W, MLP width M, L blocks, patch P, joint space C, positions T; HAT width D;
# S stages.
W, M, L, P, C, T, D, S = 32, 64, 2, 8, 32, 17, 12, 2
CLIP_KEYS = {
    'class_embedding': (W,), 'positional_embedding': (T, W), 'proj': (W, C), 'conv1.weight': (W, 3, P, P),
    'ln_pre.weight': (W,), 'ln_pre.bias': (W,), 'ln_post.weight': (W,), 'ln_post.bias': (W,),
}
BLOCK_KEYS = {  # peft >= 0.7 names (base_layer); older peft writes qkv.weight etc.
    'attn.qkv.base_layer.weight': (3 * W, W), 'attn.qkv.base_layer.bias': (3 * W,),
    'attn.qkv.lora_A.default.weight': (32, W), 'attn.qkv.lora_B.default.weight': (3 * W, 32),
    'attn.proj.weight': (W, W), 'attn.proj.bias': (W,),
    'ln_1.weight': (W,), 'ln_1.bias': (W,), 'ln_2.weight': (W,), 'ln_2.bias': (W,),
    'mlp.c_fc.base_layer.weight': (M, W), 'mlp.c_fc.base_layer.bias': (M,),
    'mlp.c_fc.lora_A.default.weight': (32, W), 'mlp.c_fc.lora_B.default.weight': (M, 32),
    'mlp.c_proj.base_layer.weight': (W, M), 'mlp.c_proj.base_layer.bias': (W,),
    'mlp.c_proj.lora_A.default.weight': (32, M), 'mlp.c_proj.lora_B.default.weight': (W, 32),
}
PROMPT_KEYS = {
    'text_global': (C, 1),
    'meta_global.meta_net.linear1.weight': (C // 16, C), 'meta_global.meta_net.linear1.bias': (C // 16,),
    'meta_global.meta_net.linear2.weight': (C, C // 16), 'meta_global.meta_net.linear2.bias': (C,),
    'meta_fuser.fc.weight': (2 * C, C), 'meta_fuser.fc.bias': (2 * C,),
    'meta_fuser.fc_out.weight': (C, C), 'meta_fuser.fc_out.bias': (C,),
    'text_att.to_q.weight': (C, C), 'text_att.to_k.weight': (C, C), 'text_att.to_v.weight': (C, C),
    'text_att.to_out.0.weight': (C, C), 'text_att.to_out.0.bias': (C,),
}
STAGE_KEYS = {  # spades.<5 i + j>: j = 0 fusion, 1 unused mapper, 2 map upsampler (patch 8 / x4: one step), 3, 4
    0: {'fc_x.weight': (C, C), 'fc_x.bias': (C,), 'fc_y.weight': (C, C), 'fc_y.bias': (C,),
        'fc_out.weight': (C, C), 'fc_out.bias': (C,)},
    1: {'cross_attn.in_proj_weight': (3 * C, C), 'cross_attn.in_proj_bias': (3 * C,),
        'cross_attn.out_proj.weight': (C, C), 'cross_attn.out_proj.bias': (C,)},
    2: {'0.weight': (4, 1, 3, 3), '0.bias': (4,)},
    3: {'weight': (D,), 'bias': (D,)},
    4: {'param_free_norm.running_mean': (D,), 'param_free_norm.running_var': (D,),
        'mlp_shared.0.weight': (128, 1, 3, 3), 'mlp_shared.0.bias': (128,),
        'mlp_gamma.weight': (D, 128, 3, 3), 'mlp_gamma.bias': (D,),
        'mlp_beta.weight': (D, 128, 3, 3), 'mlp_beta.bias': (D,)},
}
UNUSED_COUNT = S * (4 + 3) + 2  # mappers, SPADE BatchNorm buffers, HAT final norm


def published_state() -> dict:
    """Random tensors under the published key names; HAT's own keys are the published HAT's."""
    hat_options = {k: v for k, v in PUBLISHED_NETWORK.items() if k != 'type'}
    state = dict(HAT(**hat_options).state_dict())
    shapes = {f'clip1.base_model.model.{k}': s for k, s in CLIP_KEYS.items()}
    shapes |= {f'clip1.base_model.model.transformer.resblocks.{b}.{k}': s
               for b in range(L) for k, s in BLOCK_KEYS.items()}
    shapes |= PROMPT_KEYS
    shapes |= {f'spades.{5 * i + j}.{k}': s
               for i in range(S) for j, keys in STAGE_KEYS.items() for k, s in keys.items()}
    generator = torch.Generator().manual_seed(0)
    state |= {k: torch.randn(s, generator=generator) * 0.1 for k, s in shapes.items()}
    state |= {f'spades.{5 * i + 4}.param_free_norm.num_batches_tracked': torch.tensor(0) for i in range(S)}
    return state


STAND_IN_ARCH = textwrap.dedent('''
    import torch
    from basicsr.archs.arch_util import to_2tuple  # noqa: F401  (imports basicsr as the published arch does)
    from basicsr.utils.registry import ARCH_REGISTRY


    @ARCH_REGISTRY.register()
    class SEGSR:
        """Stand-in for the published arch: draws its per-stage prompts from torch's generator while it is built."""

        def __init__(self, depths, **options):
            torch.randn(100)  # what the published build draws before its prompts
            self.text_locals = [torch.randn(32, 1) * 32 ** -0.5 for _ in depths]
''')


@pytest.fixture(scope='module')
def published_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('published')
    repo = root / 'SeG-SR'
    (repo / 'segsr' / 'archs').mkdir(parents=True)
    (repo / 'clip').mkdir()
    (repo / 'clip' / 'ViT-B-16.pt').write_bytes(b'')
    (repo / 'segsr' / '__init__.py').write_text('')
    (repo / 'segsr' / 'archs' / '__init__.py').write_text('')
    (repo / 'segsr' / 'archs' / 'segsr_arch.py').write_text(STAND_IN_ARCH)
    options = root / 'train_SEGSR.yml'
    options.write_text(yaml.safe_dump({'name': 'x', 'model_type': 'SEGSRModel', 'scale': 4, 'num_gpu': 1,
                                       'manual_seed': SEED, 'network_g': PUBLISHED_NETWORK}))
    checkpoint = root / 'official.pth'
    torch.save({'params': published_state(), 'params_ema': published_state()}, checkpoint)
    return {'repo': repo, 'options': options, 'checkpoint': checkpoint, 'root': root}


def convert(files: dict, output: Path, **overrides) -> Path:
    args = {'--input': files['checkpoint'], '--opt': files['options'], '--output': output,
            '--official-repo': files['repo'], '--clip-model': TINY_CLIP_MODEL} | overrides
    return convert_official_segsr.main([str(x) for pair in args.items() for x in pair])


@pytest.fixture(scope='module')
def converted(published_files) -> Path:
    return convert(published_files, published_files['root'] / 'ours.pth')


def test_converted_checkpoint_loads_strictly_and_runs(converted, published_files):
    network, options = load_network(converted)  # strict
    assert options['published_compat']['clip_num_heads'] == 16 and options['final_norm'] is False
    saved = torch.load(converted, weights_only=True)
    assert set(saved) == {'params', 'params_ema', 'network_g'}
    published = torch.load(published_files['checkpoint'], weights_only=True)['params_ema']
    assert len(saved['params_ema']) == len(published) - UNUSED_COUNT - 3 + 2 + 1  # q,k,v -> packed + bias; prompts
    adapter = saved['params_ema']['sfem.tower.transformer.resblocks.1.attn.lora.qkv.lora_B']
    peft_key = 'clip1.base_model.model.transformer.resblocks.1.attn.qkv.lora_B.default.weight'
    assert torch.equal(adapter, published[peft_key])
    with torch.no_grad():
        out = network(torch.rand(1, 3, 10, 13))
    assert out.shape == (1, 3, 40, 52) and torch.isfinite(out).all()


def test_prompts_are_the_ones_the_published_build_draws_under_the_seed(converted):
    torch.manual_seed(SEED)
    torch.randn(100)
    expected = torch.stack([(torch.randn(32, 1) * 32 ** -0.5).t() for _ in PUBLISHED_NETWORK['depths']])
    prompts = torch.load(converted, weights_only=True)['params_ema']['slm.local_prompts']
    assert torch.equal(prompts, expected)


def test_missing_clip_file_in_the_checkout_is_one_line(published_files, tmp_path):
    repo = tmp_path / 'checkout'
    (repo / 'segsr' / 'archs').mkdir(parents=True)
    (repo / 'segsr' / 'archs' / 'segsr_arch.py').write_text(STAND_IN_ARCH)
    with pytest.raises(SegSRError, match='ViT-B-16.pt is missing'):
        convert(published_files, tmp_path / 'out.pth', **{'--official-repo': repo})
    assert not (tmp_path / 'out.pth').exists()


def test_clip_architecture_other_than_the_checkpoints_is_refused(published_files, tmp_path):
    with pytest.raises(SegSRError, match='pass --clip-model'):
        convert(published_files, tmp_path / 'out.pth', **{'--clip-model': 'ViT-B-16'})


@pytest.mark.parametrize(('published', 'ours'), [
    ('transformer.resblocks.0.attn.qkv.weight', 'transformer.resblocks.0.attn.in_proj_weight'),  # peft < 0.7
    ('transformer.resblocks.0.attn.qkv.base_layer.bias', 'transformer.resblocks.0.attn.in_proj_bias'),
    ('transformer.resblocks.3.attn.qkv.lora_A.default.weight', 'transformer.resblocks.3.attn.lora.qkv.lora_A'),
    ('transformer.resblocks.0.attn.proj.weight', 'transformer.resblocks.0.attn.out_proj.weight'),
    ('transformer.resblocks.0.mlp.c_proj.weight', 'transformer.resblocks.0.mlp.c_proj.weight'),
    ('transformer.resblocks.0.mlp.c_fc.lora_B.default.weight', 'transformer.resblocks.0.mlp.c_fc.lora.lora_B'),
])
def test_both_peft_key_spellings_map_onto_the_tower(published, ours):
    assert clip_key(CLIP_PREFIX + published) == 'sfem.tower.' + ours


def test_output_over_the_input_and_a_missing_python_are_one_line(published_files, tmp_path):
    with pytest.raises(SegSRError, match='is the input checkpoint'):
        convert(published_files, published_files['checkpoint'])
    with pytest.raises(SegSRError, match='pass --official-python'):
        convert(published_files, tmp_path / 'out.pth', **{'--official-python': tmp_path / 'no-python'})
    assert not (tmp_path / 'out.pth').exists()


def test_a_published_network_of_other_than_three_bands_is_refused_before_the_published_code_runs(
        published_files, tmp_path):
    options = tmp_path / 'four_bands.yml'
    options.write_text(yaml.safe_dump({'manual_seed': SEED, 'network_g': {**PUBLISHED_NETWORK, 'in_chans': 4}}))
    no_checkout = tmp_path / 'no-checkout'
    with pytest.raises(SegSRError, match='the published SeG-SR takes 3-band RGB; this network_g has in_chans 4'):
        convert(published_files, tmp_path / 'out.pth', **{'--opt': options, '--official-repo': no_checkout})
    assert not (tmp_path / 'out.pth').exists()
