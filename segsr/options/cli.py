"""Command line and YAML options, read and checked before any work starts.

The YAML format is basicsr's, so HAT and SeG-SR configs run unchanged. Differences from
``basicsr.utils.options.parse_options``: no CUDA call unless GPUs are asked for, every problem a
user can fix is a one-line :class:`SegSRError`, and ``--root`` decides where experiments go.
"""

import argparse
import os
import random
from pathlib import Path

import torch
from basicsr.utils import set_random_seed
from basicsr.utils.dist_util import get_dist_info

from segsr.data.loaders import apply_loader_defaults
from segsr.data.raster_files import is_glob
from segsr.options.network import BAND_KEYS, input_bands
from segsr.options.registries import check_registered_types
from segsr.options.safe_yaml import load_option_file, parse_option_value
from segsr.options.schema import validate_options
from segsr.radiometry.contract import Radiometry
from segsr.utils.dist import init_dist
from segsr.utils.errors import SegSRError

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: experiments/ and results/ go beside segsr/

# Folders the project knows how to build, and the command that builds each.
DATA_BUILDERS = {
    'demo': 'python scripts/make_demo_data.py',
}
DATAROOT_KEYS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file', 'meta_info')


def parse_command_line(is_train: bool, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a super-resolution network.' if is_train else
                                     'Evaluate a super-resolution network (PSNR/SSIM).')
    parser.add_argument('-opt', required=True, help='path to the option YAML file')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true', help='resume from the newest training state')
    parser.add_argument('--debug', action='store_true', help='log every iteration, validate and save often')
    parser.add_argument('--local_rank', type=int, default=0, help='set by older launchers; unused')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:SUB=VALUE',
                        help='override options, e.g. train:total_iter=100')
    parser.add_argument('--root', default=None,
                        help='folder that receives experiments/, results/ and tb_logger/ (default: project root)')
    return parser.parse_args(argv)


def apply_overrides(opt: dict, overrides: list[str]) -> None:
    """Apply ``a:b:c=value`` overrides; each value is read as YAML by the safe option loader."""
    for entry in overrides:
        if '=' not in entry:
            raise SegSRError(f'--force_yml entry "{entry}" has no "="; write it as section:key=value')
        keys, value = (part.strip() for part in entry.split('=', 1))
        *parents, leaf = keys.split(':')
        node = opt
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise SegSRError(f'--force_yml entry "{entry}": section "{key}" does not exist in the options')
            node = node[key]
        node[leaf] = parse_option_value(value, f'--force_yml entry "{entry}"')


def check_gpus(num_gpu: int) -> None:
    """Asking for more GPUs than this machine shows is a mistake found now, not at the first CUDA call."""
    visible = torch.cuda.device_count()
    if num_gpu > visible:
        raise SegSRError(f'num_gpu: {num_gpu} but {visible} GPUs are visible here; '
                         'set num_gpu: 0 to run on the CPU (or --force_yml num_gpu=0)')


def resolve_path(path: str, root: Path) -> str:
    """Relative paths are taken from the working directory, then from the project root; URLs stay as written."""
    if '://' in path:
        return path
    expanded = Path(os.path.expanduser(path))
    if expanded.is_absolute() or expanded.exists():
        return str(expanded)
    candidate = root / expanded
    return str(candidate) if candidate.exists() else str(expanded)


def data_builder_hint(path: str) -> str:
    parts = Path(path).parts
    for folder, command in DATA_BUILDERS.items():
        if 'datasets' in parts and folder in parts:
            return f'build it with `{command}`'
    if 'datasets' in parts:
        name = parts[parts.index('datasets') + 1] if parts.index('datasets') + 1 < len(parts) else '<name>'
        return (f'prepare it with `python scripts/prepare_dataset.py {name} --src <downloaded archive> '
                f'--out datasets/{name}` (see datasets/README.md)')
    return 'fix the path in the options file'


def check_dataroots(opt: dict) -> None:
    for phase, dataset in opt.get('datasets', {}).items():
        for key in DATAROOT_KEYS:
            path = dataset.get(key)
            if path is not None and not is_glob(path) and not Path(path).exists():
                raise SegSRError(f'datasets.{phase}.{key}: {path} does not exist; {data_builder_hint(path)}')


DEFAULT_PRINT_FREQ = 100
DEFAULT_SAVE_CHECKPOINT_FREQ = 5000
DEFAULT_MAX_NONFINITE_STEPS = 10


def default_metrics(scale: int) -> dict:
    """The protocol of the SR literature: Y channel, a border of ``scale`` pixels cropped."""
    return {
        'psnr': {'type': 'calculate_psnr', 'crop_border': scale, 'test_y_channel': True},
        'ssim': {'type': 'calculate_ssim', 'crop_border': scale, 'test_y_channel': True},
    }


RASTER_DATASETS = ('RasterDataset',)
SPECTRAL_METRICS = ('calculate_band_psnr', 'calculate_band_ssim', 'calculate_sam', 'calculate_ergas')


def spectral_metrics(scale: int) -> dict:
    """The protocol for physical values: per-band PSNR over the contract's range, SSIM, SAM and ERGAS."""
    return {
        'psnr': {'type': 'calculate_band_psnr', 'crop_border': scale},
        'ssim': {'type': 'calculate_band_ssim', 'crop_border': scale},
        'sam': {'type': 'calculate_sam', 'crop_border': scale, 'better': 'lower'},
        'ergas': {'type': 'calculate_ergas', 'crop_border': scale, 'better': 'lower'},
    }


def has_rasters(opt: dict) -> bool:
    return any(dataset.get('type') in RASTER_DATASETS for dataset in opt['datasets'].values())


def check_raster_metrics(opt: dict) -> None:
    """Raster datasets hold physical values of any band count: the 8-bit image metrics do not apply."""
    metrics = (opt.get('val') or {}).get('metrics') or {}
    wrong = [name for name, metric in metrics.items() if metric.get('type') not in SPECTRAL_METRICS]
    if has_rasters(opt) and wrong:
        raise SegSRError(f'val.metrics.{wrong[0]}: {metrics[wrong[0]]["type"]} compares 8-bit images; raster '
                         f'datasets take {", ".join(SPECTRAL_METRICS)} (see docs/rasters.md)')


def set_contract(opt: dict, contract: Radiometry) -> None:
    """The radiometric contract every dataset reads and every checkpoint stores."""
    opt['contract'] = contract.to_dict()
    for dataset in opt['datasets'].values():
        dataset['contract'] = opt['contract']


def contract_of_options(opt: dict) -> Radiometry:
    """The ``radiometry`` section (8-bit default without one) with the bands of the raster training set, else of
    the first raster dataset that names them (other dataset types may read ``bands`` their own way)."""
    datasets = opt['datasets']
    named = [datasets['train']] if 'train' in datasets else []
    rasters = [dataset for dataset in [*named, *datasets.values()] if dataset.get('type') in RASTER_DATASETS]
    bands = next((dataset['bands'] for dataset in rasters if dataset.get('bands')), None)
    if bands is not None and (not isinstance(bands, list) or not all(
            isinstance(band, int) and not isinstance(band, bool) and band >= 1 for band in bands)):
        raise SegSRError(f'datasets.*.bands: {bands!r} is not a list of band numbers from 1; write e.g. [3, 2, 1, 4]')
    return Radiometry.from_options(opt.get('radiometry'), bands)


def network_bands(network: dict) -> int:
    """The bands network_g takes, stated flat or in its ``backbone``."""
    backbone = network.get('backbone')
    if isinstance(backbone, dict) and not any(key in network for key in BAND_KEYS):
        return input_bands(backbone)
    return input_bands(network)


def check_band_count(opt: dict, contract: Radiometry) -> None:
    if contract.bands and len(contract.bands) != network_bands(opt['network_g']):
        raise SegSRError(f'bands {list(contract.bands)} feed {len(contract.bands)} bands to network_g, which takes '
                         f'{network_bands(opt["network_g"])}; make the band list and in_chans agree')


def complete_options(opt: dict, is_train: bool) -> None:
    """Fill every default the run reads, once, so no later stage changes the options or guesses a value."""
    logger = opt['logger']
    if is_train:
        logger.setdefault('print_freq', DEFAULT_PRINT_FREQ)
        logger.setdefault('save_checkpoint_freq', DEFAULT_SAVE_CHECKPOINT_FREQ)
        logger.setdefault('use_tb_logger', True)
        opt['train'].setdefault('max_nonfinite_steps', DEFAULT_MAX_NONFINITE_STEPS)
        apply_loader_defaults(opt['datasets']['train'], opt['num_gpu'])
    else:
        if not isinstance(opt.get('scale'), int):
            raise SegSRError('scale: missing; add the upscaling factor of the network (e.g. scale: 4)')
        val = opt['val'] = opt.get('val') or {}
        val.setdefault('metrics', (spectral_metrics if has_rasters(opt) else default_metrics)(opt['scale']))
        # a test set of LR images alone has nothing to score against: its super-resolved images are the result
        val.setdefault('save_img', not any(isinstance(dataset, dict) and dataset.get('dataroot_gt')
                                           for dataset in (opt.get('datasets') or {}).values()))
        val.setdefault('pbar', True)


def setup_options(args: argparse.Namespace, is_train: bool) -> dict:
    """Read, complete and check the options; join the process group when a launcher is given."""
    opt = load_option_file(args.opt)
    if args.force_yml:
        apply_overrides(opt, args.force_yml)
    validate_options(opt, args.opt, is_train)
    name = opt['name']
    opt.setdefault('path', {})
    opt.setdefault('logger', {})

    if opt.get('num_gpu', 0) == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    opt['num_gpu'] = int(opt.get('num_gpu', 0))
    check_gpus(opt['num_gpu'])

    check_registered_types(opt)

    opt['dist'] = args.launcher != 'none'
    if opt['dist']:
        init_dist(args.launcher, use_gpu=opt['num_gpu'] > 0)
    opt['rank'], opt['world_size'] = get_dist_info()

    seed = opt.get('manual_seed')
    if seed is None:
        seed = random.randint(1, 10000)
        opt['manual_seed'] = seed
    set_random_seed((seed + opt['rank']) % 2**32)  # each process its own seed, in the generators' range

    opt['auto_resume'] = args.auto_resume
    opt['is_train'] = is_train
    if args.debug and not name.startswith('debug'):
        opt['name'] = name = f'debug_{name}'

    root = Path(args.root).resolve() if args.root else PROJECT_ROOT
    opt['root_path'] = str(root)
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase.split('_')[0]
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in DATAROOT_KEYS:
            if dataset.get(key) is not None:
                dataset[key] = resolve_path(dataset[key], PROJECT_ROOT)
    for key, value in opt['path'].items():
        if value is not None and ('resume_state' in key or 'pretrain_network' in key):
            opt['path'][key] = resolve_path(value, PROJECT_ROOT)
    check_dataroots(opt)

    if is_train:
        experiments_root = root / 'experiments' / name
        opt['path'].update(
            experiments_root=str(experiments_root),
            models=str(experiments_root / 'models'),
            training_states=str(experiments_root / 'training_states'),
            log=str(experiments_root),
            visualization=str(experiments_root / 'visualization'),
        )
        if 'debug' in name:
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger']['print_freq'] = 1
            opt['logger']['save_checkpoint_freq'] = 8
    else:
        results_root = root / 'results' / name
        opt['path'].update(results_root=str(results_root), log=str(results_root),
                           visualization=str(results_root / 'visualization'))
    complete_options(opt, is_train)
    check_raster_metrics(opt)
    contract = contract_of_options(opt)
    check_band_count(opt, contract)
    set_contract(opt, contract)
    return opt
