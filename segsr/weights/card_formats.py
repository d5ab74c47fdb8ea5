"""A weights file's model card read back and written out: Markdown for a model folder's README, and a STAC Item
with the Machine Learning Model (MLM) extension for catalogues."""

import os
from pathlib import Path

import numpy as np

from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError
from segsr.weights.files import existing_weights, load_checkpoint
from segsr.weights.safetensors_files import is_safetensors, load_safetensors_entry

MLM_SCHEMA = 'https://stac-extensions.github.io/mlm/v1.4.0/schema.json'
MLM_REQUIRED = ('mlm:name', 'mlm:architecture', 'mlm:tasks', 'mlm:input', 'mlm:output')
"""The Item properties the MLM extension requires (its JSON schema is not shipped by any installed library)."""


def stored_card(weights: str | os.PathLike) -> dict | None:
    """The card stored in a weights file (safetensors: from its header alone, no tensor read), None for a file
    saved without one; a missing or unreadable file is a one-line error."""
    path = existing_weights(weights)
    if path.is_file() and is_safetensors(path):
        card = load_safetensors_entry(path, 'card')
    else:
        content = load_checkpoint(path)
        card = content.get('card') if isinstance(content, dict) else None
    return card if isinstance(card, dict) else None


def read_card(weights: str | os.PathLike) -> dict:
    """The card stored in a weights file; one without a card is a one-line error."""
    card = stored_card(weights)
    if card is None:
        raise SegSRError(f'weights file {existing_weights(weights)} holds no model card (it was saved before cards '
                         'existed or by another tool): train or fine-tune it with segsr to get one')
    return card


def value_scaling(contract: Radiometry, count: int) -> list[dict]:
    """The contract as MLM min-max scaling per band, in raw units where raw -> physical is fixed, else physical."""
    low, high = (np.broadcast_to(values, count) for values in (contract.low, contract.high))
    if contract.scale is not None:
        scale, offset = (np.broadcast_to(values, count) for values in (contract.scale, contract.offset))
        low, high = (low - offset) / scale, (high - offset) / scale
    return [{'type': 'min-max', 'minimum': float(lo), 'maximum': float(hi)} for lo, hi in zip(low, high, strict=True)]


def stac_item(card: dict, weights: str | os.PathLike) -> dict:
    """A STAC Item describing the model with the MLM extension; the weights file is its ``mlm:model`` asset."""
    contract = Radiometry.from_dict(card['radiometry'])
    inputs, outputs = card['input'], card['output']
    in_count, out_count = inputs['count'], outputs['count']
    dtype = inputs.get('dtype') or 'float32'
    weights = Path(weights)
    return {
        'type': 'Feature', 'stac_version': '1.0.0', 'stac_extensions': [MLM_SCHEMA],
        'id': card.get('name') or weights.stem, 'geometry': None,
        'properties': {
            'datetime': None, 'start_datetime': '1970-01-01T00:00:00Z', 'end_datetime': '9999-12-31T23:59:59Z',
            'description': card_summary(card),
            'mlm:name': card.get('name') or weights.stem,
            'mlm:architecture': card['architecture']['type'],
            'mlm:tasks': ['super-resolution'],
            'mlm:framework': 'pytorch',
            'mlm:total_parameters': card['architecture']['parameters'],
            'mlm:pretrained': False,
            'mlm:input': [{
                'name': 'low-resolution image', 'bands': inputs['bands'],
                'input': {'shape': [-1, in_count, -1, -1], 'dim_order': ['batch', 'channel', 'height', 'width'],
                          'data_type': dtype},
                'value_scaling': value_scaling(contract, in_count),
                'description': f'radiometric contract: {contract.describe()}',
                'resize_type': None, 'pre_processing_function': None,
            }],
            'mlm:output': [{
                'name': f'super-resolved image x{card["scale"]}', 'tasks': ['super-resolution'],
                'result': {'shape': [-1, out_count, -1, -1], 'dim_order': ['batch', 'channel', 'height', 'width'],
                           'data_type': dtype},
                'description': f'{", ".join(outputs["bands"])} at {card["scale"]} times the input size, mapped back '
                               'through the same contract',
                'post_processing_function': None,
            }],
            'mlm:hyperparameters': {'scale': card['scale']},
            'license': card.get('license') or 'other',
        },
        'links': [],
        'assets': {'weights': {'href': weights.name, 'title': f'{card["architecture"]["type"]} weights',
                               'type': 'application/octet-stream', 'roles': ['mlm:model'],
                               'mlm:artifact_type': 'safetensors' if is_safetensors(weights) else 'torch.save'}},
    }


def card_summary(card: dict) -> str:
    inputs = card['input']
    return (f'{card["architecture"]["type"]} x{card["scale"]} super-resolution of {inputs["count"]} bands '
            f'({", ".join(inputs["bands"])}), trained with segsr {card["segsr"]["version"]}')


def card_markdown(card: dict) -> str:
    """The card as a README for a model folder."""
    contract = Radiometry.from_dict(card['radiometry'])
    inputs, outputs, segsr = card['input'], card['output'], card['segsr']
    lines = [f'# {card.get("name") or card["architecture"]["type"]}', '', card_summary(card) + '.', '',
             '| | |', '|---|---|',
             f'| Architecture | {card["architecture"]["type"]} ({card["architecture"]["parameters"]:,} parameters) |',
             f'| Scale | x{card["scale"]} |',
             f'| Input bands | {", ".join(inputs["bands"])} ({inputs["count"]}, {inputs.get("dtype") or "any dtype"}, '
             f'{inputs["order"]}) |',
             f'| Output bands | {", ".join(outputs["bands"])} ({outputs["count"]}) |',
             f'| Radiometric contract | {contract.describe()} |',
             f'| segsr | {segsr["version"]} (commit {segsr.get("commit") or "unknown"}) |',
             f'| Licence | {card.get("license") or "not stated"} |', '']
    lines += ['## Degradation', ''] + [f'- {describe_mapping(item)}' for item in card['degradation'] or [{}]] + ['']
    lines += ['## Training data', '', '| Dataset | Type | Samples | Split file | sha256 |', '|---|---|---|---|---|']
    lines += [dataset_row(dataset) for dataset in card['training_data']] + ['']
    lines += validation_lines(card['validation'])
    return '\n'.join(lines) + '\n'


def describe_mapping(mapping: dict) -> str:
    return ', '.join(f'{key}: {value}' for key, value in mapping.items()) or 'not recorded'


def dataset_row(dataset: dict) -> str:
    meta = dataset.get('meta_info_file') or {}
    count = dataset.get('count')
    return (f'| {dataset.get("name")} | {dataset.get("type")} | {"unknown" if count is None else count} | '
            f'{meta.get("path", "-")} | {meta.get("sha256") or "-"} |')


def channels_measured(metric: dict) -> str:
    if metric['test_y_channel']:
        return 'Y channel'
    bands = metric.get('bands')
    return f'bands {",".join(map(str, bands))}' if bands else 'all channels'


def validation_lines(validation: dict) -> list[str]:
    protocol = validation['protocol']
    lines = ['## Validation', '', 'Protocol: ' + '; '.join(
        f'{name} ({metric["type"]}, crop_border {metric["crop_border"]}, {channels_measured(metric)})'
        for name, metric in protocol['metrics'].items()) + (', self-ensemble' if protocol['self_ensemble'] else '')
        + (', LR consistency enforced' if protocol['enforce_consistency'] else '') + '.', '']
    results = validation.get('results') or {}
    if not results:
        return lines + ['No validation was run.', '']
    lines += ['| Dataset | Metric | Best | At iteration | Last |', '|---|---|---|---|---|']
    for dataset, metrics in results.items():
        for metric, record in metrics.items():
            last = '-' if record.get('last') is None else f'{record["last"]:.4f}'
            lines.append(f'| {dataset} | {metric} | {record["best"]:.4f} | {record["best_iter"]} | {last} |')
    return lines + ['']

