"""The JSON schema of option files is generated from the option schema and agrees with segsr's own check."""

import json
from pathlib import Path

import jsonschema
import pytest

from segsr.options.json_schema import option_json_schema
from segsr.options.safe_yaml import load_option_file
from segsr.options.schema import EVAL_TOP, TRAIN_TOP, Field, at_least, validate_options
from segsr.schema import main as schema_main
from segsr.utils.errors import SegSRError

ROOT = Path(__file__).resolve().parents[1]


def as_json(opt: dict) -> dict:
    """What an editor sees of a YAML file: JSON values (tuples become lists)."""
    return json.loads(json.dumps(opt))


def validator(is_train: bool):
    schema = option_json_schema(is_train)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize('kind', ['train', 'test'])
def test_every_shipped_option_file_validates(kind):
    files = sorted((ROOT / 'options' / kind).glob('*.yml'))
    assert files
    checker = validator(kind == 'train')
    problems = {f.name: [e.message for e in checker.iter_errors(as_json(load_option_file(f)))] for f in files}
    assert not {name: found for name, found in problems.items() if found}


@pytest.mark.parametrize('section, key, value', [
    ('train', 'total_iters', 10),                # a typo in a closed section
    ('train', 'accum_iter', 0),                  # below its minimum
    ('train', 'grad_clip_max_norm', -1.0),
    ('train', 'ema_start_iter', -1),
    ('logger', 'print_frequency', 10),
])
def test_a_wrong_option_is_refused_by_the_schema_as_by_segsr(section, key, value):
    opt = load_option_file(ROOT / 'options' / 'train' / 'demo_HAT_SRx4.yml')
    opt[section][key] = value
    assert list(validator(True).iter_errors(as_json(opt)))
    with pytest.raises(SegSRError, match=f'{section}.{key}'):
        validate_options(opt, 'demo_HAT_SRx4.yml', is_train=True)


def test_an_unknown_optimiser_is_refused_by_both():
    opt = load_option_file(ROOT / 'options' / 'train' / 'demo_HAT_SRx4.yml')
    opt['train']['optim_g']['type'] = 'Adamw'
    assert list(validator(True).iter_errors(as_json(opt)))
    with pytest.raises(SegSRError, match='did you mean "AdamW"'):
        validate_options(opt, 'demo_HAT_SRx4.yml', is_train=True)


def test_the_command_prints_the_generated_schema(capsys):
    schema_main([])
    assert json.loads(capsys.readouterr().out) == option_json_schema(True)
    schema_main(['--test'])
    printed = json.loads(capsys.readouterr().out)
    assert printed == option_json_schema(False) and 'train' not in printed['required']
    assert printed['properties']['train']['type'] == 'object'


def dotted_keys(spec: Field, where: str = '') -> list[str]:
    """Every key the option schema names, at every depth, by its dotted path."""
    return [path for key, sub in spec.keys.items() for path in [f'{where}{key}', *dotted_keys(sub, f'{where}{key}.')]]


def json_schema_at(schema: dict, path: str) -> dict | None:
    for key in path.split('.'):
        schema = schema.get('properties', {}).get(key)
        if schema is None:
            return None
    return schema


@pytest.mark.parametrize('is_train', [True, False])
def test_every_key_of_the_option_schema_is_in_the_json_schema(is_train):
    keys = dotted_keys(TRAIN_TOP if is_train else EVAL_TOP)
    assert 'train.accum_iter' in keys or not is_train
    schema = option_json_schema(is_train)
    assert [path for path in keys if json_schema_at(schema, path) is None] == []


def test_a_key_added_to_the_option_schema_appears_in_the_json_schema(monkeypatch):
    assert 'warp_factor' not in option_json_schema(True)['properties']['train']['properties']
    monkeypatch.setitem(TRAIN_TOP.keys['train'].keys, 'warp_factor', Field(('int',), check=at_least(3)))
    schema = option_json_schema(True)
    assert schema['properties']['train']['properties']['warp_factor'] == {'type': 'integer', 'minimum': 3}
    opt = as_json(load_option_file(ROOT / 'options' / 'train' / 'demo_HAT_SRx4.yml'))
    checker = jsonschema.Draft202012Validator(schema)
    opt['train']['warp_factor'] = 3
    assert not list(checker.iter_errors(opt))
    opt['train']['warp_factor'] = 2
    assert [error.json_path for error in checker.iter_errors(opt)] == ['$.train.warp_factor']
