"""Every key of a network section reaches a real constructor parameter, or the run stops before building."""

from pathlib import Path

import pytest
import torch
from conftest import train_options, write_yaml

from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.options.network import constructor_parameters, network_option_problems
from segsr.options.registries import check_registered_types
from segsr.options.safe_yaml import load_option_file
from segsr.options.schema import validate_options
from segsr.training import main as train_main

OPTIONS = Path(__file__).resolve().parents[1] / 'options'
TINY_HAT = {'type': 'HAT', 'upscale': 4, 'img_size': 8, 'window_size': 4, 'embed_dim': 12, 'depths': [1],
            'num_heads': [2], 'compress_ratio': 3, 'squeeze_factor': 4, 'mlp_ratio': 2}
TINY_SEGSR = {
    'type': 'SEGSR', 'upscale': 4, 'backbone': {k: v for k, v in TINY_HAT.items() if k != 'type'},
    'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': None, 'lora': {'rank': 2, 'alpha': 2}},
    'slm': {'num_local': 2, 'num_heads': 4}, 'lmm': {'hidden': 8},
}


@pytest.mark.parametrize('path', sorted(OPTIONS.rglob('*.yml')), ids=lambda p: f'{p.parent.name}/{p.name}')
def test_shipped_option_file_passes_the_full_validation(path):
    opt = load_option_file(path)
    validate_options(opt, str(path), is_train=path.parent.name == 'train')
    check_registered_types(opt)


def test_misspelt_window_size_stops_training_before_any_folder(demo_data, tmp_path):
    options = train_options(demo_data, 'typo', network={**TINY_HAT, 'window_szie': 16})
    with pytest.raises(SystemExit) as exit_info:
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    message = str(exit_info.value.code)
    assert '\n' not in message
    assert 'network_g.window_szie: unknown key for HAT; did you mean "window_size"?' in message
    assert not (tmp_path / 'experiments').exists()


def test_every_nested_problem_is_listed_at_once():
    network = {**TINY_SEGSR, 'lmm': {'hiden': 8}, 'backbone': {**TINY_SEGSR['backbone'], 'depth': [1]},
               'sfem': {**TINY_SEGSR['sfem'], 'modle': 'x', 'lora': {'rnak': 2}}, 'slm': {'text_init': {'temp': 'a'}}}
    problems = network_option_problems({'network_g': network})
    assert problems == [
        'network_g.backbone.depth: unknown key for HAT; did you mean "depths"?',
        'network_g.sfem.modle: unknown key for SFEM; did you mean "model"?',
        'network_g.sfem.lora.rnak: unknown key for LoRA; did you mean "rank"?',
        'network_g.slm.text_init.temp: unknown key for SLM text_init; did you mean "template"?',
        'network_g.lmm.hiden: unknown key for LMM; did you mean "hidden"?',
    ]


def test_arguments_supplied_by_the_parent_are_not_options():
    problems = network_option_problems({'network_g': {**TINY_SEGSR, 'lmm': {'num_feat': 8}, 'sfem': {'scale': 4}}})
    assert len(problems) == 2
    sfem_keys = problems[0].removeprefix('network_g.sfem.scale: unknown key for SFEM; SFEM takes: ').split(', ')
    assert {'model', 'pretrained', 'lora'} <= set(sfem_keys) and not {'scale', 'loaded_clip'} & set(sfem_keys)
    assert problems[1] == 'network_g.lmm.num_feat: unknown key for LMM; LMM takes: hidden, norm, zero_init'


def test_guided_backbone_type_and_missing_required_arguments():
    problems = network_option_problems({
        'network_g': {'type': 'GuidedSwinIR', 'backbone': {'window_sise': 4}},
        'network_d': {'type': 'EDSR', 'num_in_ch': 3},
        'network_x': {'type': 'HATT'},
    })
    assert problems == [
        'network_g.backbone.window_sise: unknown key for StagedSwinIR; did you mean "window_size"?',
        'network_d.num_out_ch: missing; EDSR needs it',
        'network_x.type: unknown arch "HATT"; did you mean "HAT"?',
    ]


def test_keyword_arguments_are_followed_into_the_base_constructor():
    from segsr.archs.staged_arch import StagedSwinIR

    parameters, open_ended = constructor_parameters(StagedSwinIR)
    assert {'upscale', 'upsampler', 'window_size', 'embed_dim'} <= set(parameters)
    assert not open_ended


class WrapsEDSR(torch.nn.Module):
    """A user's arch that hands its other keys to a network it wraps, as test helpers and forks do."""

    def __init__(self, dropout: float = 0.1, **edsr_options):
        from basicsr.archs.edsr_arch import EDSR

        super().__init__()
        self.edsr = EDSR(**edsr_options)


class DropsKeys(torch.nn.Module):
    def __init__(self, width: int = 8, **ignored):
        super().__init__()


def test_keys_passed_on_to_a_wrapped_network_are_not_refused_but_dropped_keys_are():
    _, wraps_open = constructor_parameters(WrapsEDSR)
    _, drops_open = constructor_parameters(DropsKeys)
    assert wraps_open and not drops_open


def test_a_tiny_segsr_is_clean():
    assert network_option_problems({'network_g': TINY_SEGSR}) == []
