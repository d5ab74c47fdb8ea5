"""Evaluation: the ``val.metrics`` (PSNR/SSIM, docs/evaluation.md for the rest) per image, per class and on
average, printed and written under results/<name>/."""

import logging
import sys
from collections import defaultdict
from pathlib import Path

import torch
from basicsr.models import build_model
from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs
from basicsr.utils.options import dict2str

from segsr.data.loaders import build_checked_dataset, build_eval_loader
from segsr.options.cli import parse_command_line, set_contract, setup_options
from segsr.radiometry.contract import Radiometry
from segsr.self_ensemble import PROTOCOL_TEXT
from segsr.utils.errors import SegSRError
from segsr.utils.fresh_folder import FreshFolder
from segsr.utils.report import average_rows, format_table, metric_columns, write_csv, write_json
from segsr.weights.files import existing_weights
from segsr.weights.hub import resolve_weights
from segsr.weights.network import stored_radiometry

SPECTRAL_TEXT = {
    'calculate_band_psnr': 'PSNR per band over the contract\'s physical range', 'calculate_band_ssim': 'SSIM per band',
    'calculate_sam': 'SAM in degrees', 'calculate_ergas': 'ERGAS',
}


def describe_protocol(metrics_opt: dict, self_ensemble: bool = False, enforce_consistency: bool = False) -> dict:
    """What the numbers mean: RGB and Y-channel papers, plain and self-ensembled ("+") rows, raw and
    consistency-enforced outputs are not comparable; physical values of raster datasets are measured per band,
    nodata left out."""
    first = next(iter(metrics_opt.values()), {})
    crop = int(first.get('crop_border', 0))
    if first.get('type') in SPECTRAL_TEXT:
        channel = 'bands'
        measures = ', '.join(SPECTRAL_TEXT.get(metric['type'], metric['type']) for metric in metrics_opt.values())
        text = f'physical values ({measures}; nodata masked), {crop}-pixel border cropped'
    else:
        channel = 'Y' if first.get('test_y_channel') else 'RGB'
        text = f'{channel} channel, {crop}-pixel border cropped'
    text += f', {PROTOCOL_TEXT}' if self_ensemble else ''
    text += ', LR consistency enforced' if enforce_consistency else ''
    return {'channel': channel, 'crop_border': crop, 'self_ensemble': self_ensemble,
            'enforce_consistency': enforce_consistency, 'text': text}


def count_parameters(net: torch.nn.Module) -> tuple[int, int]:
    params = list(net.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def per_class_rows(rows: list[dict], metrics: list[str]) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        groups[row['class']].append(row)
    return [{'class': name, 'images': len(group), **average_rows(group, metrics)}
            for name, group in sorted(groups.items())]


def report_dataset(opt: dict, dataset_name: str, rows: list[dict], model) -> dict:
    """Print the tables for one test set and write them as CSV and JSON; return the JSON payload."""
    logger = get_root_logger()
    metrics = metric_columns(rows)
    protocol = describe_protocol(opt['val']['metrics'], opt['val'].get('self_ensemble', False),
                                 opt['val'].get('enforce_consistency', False))
    average = average_rows(rows, metrics)
    columns = ['image'] + (['class'] if 'class' in rows[0] else []) + metrics
    logger.info('\n' + format_table(rows, columns, title=f'{dataset_name}: per image ({protocol["text"]})'))
    classes = per_class_rows(rows, metrics) if 'class' in rows[0] else []
    if classes:
        logger.info('\n' + format_table(classes, ['class', 'images'] + metrics, title=f'{dataset_name}: per class'))
    logger.info('\n' + format_table([{'dataset': dataset_name, 'images': len(rows), **average}],
                                    ['dataset', 'images'] + metrics, title=f'{dataset_name}: average'))
    for metric in opt['val']['metrics']:
        if f'bicubic_{metric}' in average:
            gain = average[metric] - average[f'bicubic_{metric}']
            logger.info(f'{dataset_name}: {metric.upper()} {average[metric]:.4f} vs bicubic '
                        f'{average[f"bicubic_{metric}"]:.4f} ({gain:+.4f})')

    results_root = Path(opt['path']['results_root'])
    write_csv(results_root / f'{dataset_name}.csv',
              rows + [{'image': 'AVERAGE', **average}], columns)
    total, trainable = count_parameters(model.get_bare_model(model.net_g))
    payload = {
        'name': opt['name'],
        'network': opt['network_g']['type'],
        'scale': opt['scale'],
        'dataset': dataset_name,
        'protocol': protocol,
        'weights': opt['path'].get('pretrain_network_g'),
        'params': total,
        'trainable_params': trainable,
        'num_images': len(rows),
        'average': average,
        'per_class': classes,
        'images': rows,
    }
    write_json(results_root / f'{dataset_name}.json', payload)
    logger.info(f'Results written to {results_root / dataset_name}.csv and .json')
    return payload


def apply_checkpoint_contract(opt: dict) -> str | None:
    """Test with the radiometric contract stored in the weights unless the options state one; return a warning
    when the options' contract differs from the stored one. A missing file is reported later, when the model
    loads it, after the datasets have been checked."""
    weights = existing_weights(opt['path']['pretrain_network_g'])
    opt['path']['pretrain_network_g'] = str(weights)
    stored = stored_radiometry(weights) if weights.is_file() else None
    if stored is None:
        return None
    if 'radiometry' not in opt:
        set_contract(opt, stored)
        return None
    options = Radiometry.from_dict(opt['contract'])
    if options != stored:
        return (f'the options\' radiometry ({options.describe()}) differs from the one the weights were trained '
                f'with ({stored.describe()}); testing with the options\' one')
    return None


def evaluate(opt: dict) -> list[dict]:
    if not opt['path'].get('pretrain_network_g'):
        raise SegSRError('path.pretrain_network_g is not set; point it at the trained weights '
                         '(experiments/<name>/models/net_g_latest.safetensors or .pth), a catalogue name or '
                         'hf:// / https:// URL')
    opt['path']['pretrain_network_g'] = str(resolve_weights(opt['path']['pretrain_network_g']).path)
    contract_note = apply_checkpoint_contract(opt)
    datasets = {phase: build_checked_dataset(dataset_opt, phase)  # a bad file stops the run before anything is written
                for phase, dataset_opt in opt['datasets'].items()}
    results = FreshFolder.create(Path(opt['path']['results_root']), lambda: make_exp_dirs(opt))
    try:
        return evaluate_into_results(opt, datasets, contract_note)
    except BaseException:
        results.undo()  # no half-written results; an earlier evaluation of this name moves back in place
        raise


def evaluate_into_results(opt: dict, datasets: dict, contract_note: str | None) -> list[dict]:
    log_file = Path(opt['path']['log']) / f"test_{opt['name']}_{get_time_str()}.log"
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=str(log_file))
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    if contract_note:
        logger.warning(contract_note)

    loaders = []
    for phase, checked in datasets.items():
        loader = build_eval_loader(checked, opt['datasets'][phase], opt, logger)
        logger.info(f'Test set {opt["datasets"][phase]["name"]}: {len(loader.dataset)} images.')
        loaders.append(loader)
    model = build_model(opt)
    payloads = []
    for loader in loaders:
        name = loader.dataset.opt['name']
        rows = model.validation(loader, current_iter=0, tb_logger=None, save_img=opt['val']['save_img'])
        payloads.append(report_dataset(opt, name, rows, model))
    return payloads


def main(argv: list[str] | None = None) -> None:
    args = parse_command_line(is_train=False, argv=argv)
    try:
        evaluate(setup_options(args, is_train=False))
    except SegSRError as err:
        sys.exit(f'error: {err}')
