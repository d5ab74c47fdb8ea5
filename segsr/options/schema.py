"""The shape of a basicsr option file, checked before any work so that every mistake shows at once.

Sections that basicsr and this project read (top level, ``datasets.*``, ``path``, ``train``, ``val``,
``logger``, ``dist_params``) are described here; the constructor arguments of registered types
(a dataset's own options, a loss's or metric's) stay free-form apart from ``type``; those of
``network_*`` are checked against the arch constructors by :mod:`segsr.options.network`.
"""

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from segsr.options.degradation import degradation_problems
from segsr.options.network import discriminator_problems, network_option_problems
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError
from segsr.utils.limits import BATCH_PIXELS, CALL_PIXELS, LimitExceeded

KIND_NAMES = {'int': 'an integer', 'float': 'a number', 'bool': 'true/false', 'str': 'a string',
              'list': 'a list', 'dict': 'a mapping', 'none': '~ (null)'}


@dataclass(frozen=True)
class Field:
    """One option: the YAML kinds it may take, whether it must be there, and the keys of a mapping.

    ``keys`` and ``patterns`` (regular expressions) name a mapping's known keys; ``closed`` mappings
    reject any other key, with a did-you-mean suggestion among ``keys`` and ``examples``. ``check``
    judges a value of the right kind and returns what is wrong with it, or None.
    """

    kinds: tuple[str, ...]
    required: bool = False
    keys: dict[str, 'Field'] = field(default_factory=dict)
    patterns: dict[str, 'Field'] = field(default_factory=dict)
    closed: bool = False
    examples: tuple[str, ...] = ()
    check: Callable[[object], str | None] | None = None


def _f(*kinds: str, required: bool = False, check: Callable[[object], str | None] | None = None) -> Field:
    return Field(kinds, required, check=check)


def described(check: Callable[[object], str | None], **json_schema) -> Callable[[object], str | None]:
    """``check``, carrying the JSON-schema keywords that say the same (see :mod:`segsr.options.json_schema`)."""
    check.json_schema = json_schema
    return check


def at_least(minimum: int) -> Callable[[object], str | None]:
    """A number (or null, where the kinds allow it) of at least ``minimum``."""
    return described(lambda value: None if value is None or value >= minimum else
                     f'must be at least {minimum}, got {value}', minimum=minimum)


def greater_than(bound: float) -> Callable[[object], str | None]:
    """A number (or null, where the kinds allow it) greater than ``bound``."""
    return described(lambda value: None if value is None or value > bound else
                     f'must be greater than {bound}, got {value}', exclusiveMinimum=bound)


positive = greater_than(0)


def one_of(names: tuple[str, ...], what: str) -> Callable[[object], str | None]:
    """One of ``names``; anything else is named with the closest of them."""
    def check(value: object) -> str | None:
        if value in names:
            return None
        lowered = {name.lower(): name for name in names}  # a wrong case is the likeliest slip
        close = difflib.get_close_matches(str(value).lower(), lowered, n=1, cutoff=0.5)
        hint = f'did you mean "{lowered[close[0]]}"? ' if close else ''
        return f'unknown {what} {value!r}; {hint}known: {", ".join(names)}'
    return described(check, enum=list(names))


SEED_RANGE = (0, 2**32 - 1)  # what numpy's and torch's generators accept


def _seed_value(value: object) -> str | None:
    low, high = SEED_RANGE
    return None if value is None or low <= value <= high else f'must lie between {low} and {high}, got {value}'


seed_value = described(_seed_value, minimum=SEED_RANGE[0], maximum=SEED_RANGE[1])


def gpu_count(value: object) -> str | None:
    if value == 'auto' or (not isinstance(value, str) and value >= 0):
        return None
    return f'must be a number of GPUs (0 for the CPU) or auto, got {value!r}'


def _plain_folder_name(value: object) -> str | None:
    """``name`` becomes experiments/<name> and results/<name>: it must stay inside them."""
    if value in ('', '.', '..') or '/' in value or '\\' in value or '\0' in value:
        return f'must be a plain folder name (no path separator, not "." or ".."), got {value!r}'
    return None


plain_folder_name = described(_plain_folder_name, pattern=r'^(?!\.\.?$)[^/\\\x00]+$')


TYPED = Field(('dict',), keys={'type': _f('str', required=True)})  # a registered type and its free-form kwargs
OPTIONAL_TYPED = Field(('dict', 'none'), keys={'type': _f('str', required=True)})
# Optimiser types of ``optim_<net>.type`` and the class each names (imported by segsr.models.optimizers when used).
OPTIMIZERS = {'Adam': 'torch.optim.Adam', 'AdamW': 'torch.optim.AdamW', 'SGD': 'torch.optim.SGD',
              'AdamWScheduleFree': 'schedulefree.AdamWScheduleFree'}
OPTIM = Field(('dict',), keys={'type': _f('str', required=True, check=one_of(tuple(OPTIMIZERS), 'optimiser')),
                               'lr': _f('float', check=positive)})

POSITIVE_INT = _f('int', check=at_least(1))
DATASET_KEYS = {
    'name': _f('str', required=True), 'type': _f('str', required=True), 'phase': _f('str'), 'scale': POSITIVE_INT,
    'dataroot_gt': _f('str'), 'dataroot_lq': _f('str'), 'meta_info_file': _f('str', 'none'),
    'meta_info': _f('str', 'none'), 'io_backend': _f('dict'), 'filename_tmpl': _f('str'), 'gt_size': POSITIVE_INT,
    'use_hflip': _f('bool'), 'use_rot': _f('bool'), 'use_shuffle': _f('bool'),
    'num_worker_per_gpu': _f('int', check=at_least(0)),
    'batch_size_per_gpu': POSITIVE_INT, 'dataset_enlarge_ratio': POSITIVE_INT, 'prefetch_mode': _f('str', 'none'),
    'pin_memory': _f('bool'), 'persistent_workers': _f('bool'), 'num_prefetch_queue': POSITIVE_INT,
    'color': _f('str', 'none'), 'mean': _f('list', 'none'), 'std': _f('list', 'none'),
    'product_bands': _f('list'), 'resample': _f('bool'),
}
TRAIN_DATASET = Field(('dict',), keys={**DATASET_KEYS, 'batch_size_per_gpu': replace(POSITIVE_INT, required=True)})
EVAL_DATASET = Field(('dict',), keys=DATASET_KEYS)

PATH = Field(('dict',), closed=True, keys={
    'resume_state': _f('str', 'none'), 'ignore_resume_networks': _f('list', 'none'),
    'experiments_root': _f('str'), 'models': _f('str'), 'training_states': _f('str'), 'log': _f('str'),
    'visualization': _f('str'), 'results_root': _f('str'),
}, patterns={
    r'pretrain_network_\w+': _f('str', 'none'), r'strict_load_\w+': _f('bool'), r'param_key_\w+': _f('str', 'none'),
}, examples=('pretrain_network_g', 'strict_load_g', 'param_key_g'))

TRAIN = Field(('dict',), closed=True, keys={
    'total_iter': replace(POSITIVE_INT, required=True), 'optim_g': OPTIM, 'scheduler': TYPED,
    'warmup_iter': _f('int'), 'ema_decay': _f('float'), 'max_nonfinite_steps': POSITIVE_INT, 'amp': _f('str', 'bool'),
    'accum_iter': POSITIVE_INT, 'grad_clip_max_norm': _f('float', 'none', check=positive),
    'ema_start_iter': _f('int', check=at_least(0)), 'rgb_bands': _f('int', 'list', 'none'),
    'net_d_iters': _f('int', check=at_least(1)), 'net_d_init_iters': _f('int', check=at_least(0)),
    'use_grad_clip': _f('bool'), 'r1_reg_weight': _f('float'),
    'path_reg_weight': _f('float'), 'path_batch_shrink': _f('int'), 'net_g_reg_every': _f('int'),
    'net_d_reg_every': _f('int'), 'mixing_prob': _f('float'), 'fix_flow': _f('int', 'none'),
    'flow_lr_mul': _f('float'), 'dcn_lr_mul': _f('float'), 'lr_flow': _f('float'),
}, patterns={r'optim_\w+': OPTIM, r'\w+_opt': OPTIONAL_TYPED}, examples=('optim_<net>', '<loss>_opt'))

FREQUENCY = _f('int', 'none', check=at_least(1))  # every N iterations; null: never (at the end only)
METRICS = Field(('dict', 'none'), patterns={r'.+': TYPED})
VAL = Field(('dict',), closed=True, keys={
    'val_freq': FREQUENCY, 'save_img': _f('bool'), 'suffix': _f('str', 'none'), 'pbar': _f('bool'),
    'metrics': METRICS, 'compare_bicubic': _f('bool'), 'num_val_samples': _f('int'),
    'center_frame_only': _f('bool'), 'flip_seq': _f('bool'), 'amp': _f('str', 'bool'), 'self_ensemble': _f('bool'),
    'enforce_consistency': _f('bool'),
})
LOGGER = Field(('dict',), closed=True, keys={
    'print_freq': FREQUENCY, 'save_checkpoint_freq': FREQUENCY, 'use_tb_logger': _f('bool'),
    'wandb': Field(('dict', 'none'), keys={'project': _f('str', 'none'), 'resume_id': _f('str', 'none')}),
    'save_checkpoint_format': _f('str', check=one_of(('safetensors', 'pth'), 'weights format')),  # default safetensors
    'card': Field(('dict',), closed=True, keys={'license': _f('str', 'none')}),
})
DIST_PARAMS = Field(('dict',), closed=True, keys={'backend': _f('str'), 'port': _f('int')})
PERFORMANCE = Field(('dict',), closed=True, keys={
    'channels_last': _f('bool'), 'tf32': _f('bool'),
    'compile': Field(('bool', 'dict'), closed=True, keys={
        'mode': _f('str'), 'dynamic': _f('bool', 'none'), 'fullgraph': _f('bool'),
    }),
})
RADIOMETRY = Field(('dict',), closed=True, keys={
    'scale': _f('float', 'list'), 'offset': _f('float', 'list'), 'from_metadata': _f('bool'), 'range': _f('list'),
})
TILE = Field(('dict',), keys={'tile_size': _f('int'), 'tile_pad': _f('int')})

COMMON_TOP = {
    'name': _f('str', required=True, check=plain_folder_name), 'model_type': _f('str'),
    'scale': POSITIVE_INT, 'num_gpu': _f('int', 'str', check=gpu_count),
    'manual_seed': _f('int', 'none', check=seed_value), 'path': PATH, 'val': VAL, 'logger': LOGGER,
    'dist_params': DIST_PARAMS, 'find_unused_parameters': _f('bool'), 'tile': TILE, 'performance': PERFORMANCE,
    'network_g': replace(TYPED, required=True), 'radiometry': RADIOMETRY,
}
TRAIN_TOP = Field(('dict',), keys={
    **COMMON_TOP, 'train': replace(TRAIN, required=True),
    'datasets': Field(('dict',), True, keys={'train': replace(TRAIN_DATASET, required=True)},
                      patterns={r'val(_\w+)?': EVAL_DATASET}, closed=True, examples=('val', 'val_<n>')),
}, patterns={r'network_\w+': TYPED})
EVAL_TOP = Field(('dict',), keys={
    **COMMON_TOP, 'train': Field(('dict',)),
    'datasets': Field(('dict',), True, patterns={r'(train|val|test)(_\w+)?': EVAL_DATASET}, closed=True,
                      examples=('test', 'test_<n>', 'val')),
}, patterns={r'network_\w+': TYPED})

# Unknown top-level keys pass (registered models read their own, e.g. Real-ESRGAN's degradations)
# unless they are this close to a known key, which makes them a likely typo.
TYPO_SIMILARITY = 0.8


def _has_kind(value: object, kind: str) -> bool:
    if kind == 'int':
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == 'float':
        return isinstance(value, int | float) and not isinstance(value, bool)
    return {
        'bool': lambda: isinstance(value, bool), 'str': lambda: isinstance(value, str),
        'list': lambda: isinstance(value, list | tuple), 'dict': lambda: isinstance(value, dict),
        'none': lambda: value is None,
    }[kind]()


def _field_for(spec: Field, key: str) -> Field | None:
    if key in spec.keys:
        return spec.keys[key]
    return next((sub for pattern, sub in spec.patterns.items() if re.fullmatch(pattern, key)), None)


def _known_names(spec: Field) -> list[str]:
    return list(spec.keys) + list(spec.examples)


def _check(value: object, spec: Field, where: str, problems: list[str], top_level: bool = False) -> None:
    if not any(_has_kind(value, kind) for kind in spec.kinds):
        expected = ' or '.join(KIND_NAMES[kind] for kind in spec.kinds)
        problems.append(f'{where}: expected {expected}, got {type(value).__name__} {value!r}')
        return
    if spec.check is not None and (problem := spec.check(value)):
        problems.append(f'{where}: {problem}')
        return
    if not isinstance(value, dict) or not (spec.keys or spec.patterns):
        return
    prefix = f'{where}.' if where else ''
    for key, required in spec.keys.items():
        if required.required and key not in value:
            problems.append(f'{prefix}{key}: missing; add it')
    for key, sub_value in value.items():
        sub = _field_for(spec, str(key))
        if sub is not None:
            _check(sub_value, sub, f'{prefix}{key}', problems)
            continue
        close = difflib.get_close_matches(str(key), _known_names(spec), n=1,
                                          cutoff=TYPO_SIMILARITY if top_level else 0.6)
        if spec.closed or (top_level and close):
            hint = f'did you mean "{close[0]}"?' if close else f'known keys: {", ".join(_known_names(spec))}'
            problems.append(f'{prefix}{key}: unknown key; {hint}')


# Network options that state the upscaling factor, in the archs of basicsr, HAT and this project.
NETWORK_SCALE_KEYS = ('upscale', 'scale')


def _scale_problems(opt: dict) -> list[str]:
    """The network and every dataset must upscale by the top-level ``scale``."""
    scale = opt.get('scale')
    if not isinstance(scale, int):
        return []
    stated = [(f'network_g.{key}', opt['network_g'][key]) for key in NETWORK_SCALE_KEYS
              if isinstance(opt.get('network_g'), dict) and isinstance(opt['network_g'].get(key), int)][:1]
    stated += [(f'datasets.{phase}.scale', dataset['scale']) for phase, dataset in opt.get('datasets', {}).items()
               if isinstance(dataset, dict) and isinstance(dataset.get('scale'), int)]
    return [f'{where}: {value} does not match scale: {scale}; make them agree' for where, value in stated
            if value != scale]


def _over(limit, amount: int, subject: str) -> list[str]:
    try:
        limit.check(amount, subject)
    except LimitExceeded as err:
        return [str(err)]
    return []


def size_problems(opt: dict) -> list[str]:
    """Batches, crops and tiles whose memory no machine has are refused before a dataset is read."""
    problems = []
    for phase, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            continue
        batch, crop = dataset.get('batch_size_per_gpu') or 1, dataset.get('gt_size')
        crop = crop if str(phase).startswith('train') and isinstance(crop, int) else 1
        subject = f'datasets.{phase}: batch_size_per_gpu x gt_size^2' if crop > 1 else \
            f'datasets.{phase}.batch_size_per_gpu'
        problems += _over(BATCH_PIXELS, int(batch) * int(crop) ** 2, subject)
    tile = opt.get('tile')
    if isinstance(tile, dict) and isinstance(tile.get('tile_size'), int):
        side = tile['tile_size'] + 2 * (tile.get('tile_pad') if isinstance(tile.get('tile_pad'), int) else 0)
        problems += _over(CALL_PIXELS, side**2, 'tile: (tile_size + 2 tile_pad)^2')
    return problems


def wandb_problems(opt: dict) -> list[str]:
    """basicsr's option files carry ``logger.wandb`` (project null = off); a project would be silently unused."""
    wandb = (opt.get('logger') or {}).get('wandb') or {}
    if isinstance(wandb, dict) and wandb.get('project') is not None:
        return [f"logger.wandb.project: {wandb['project']!r} is not used, segsr logs to TensorBoard only; set "
                'project: ~ and upload tb_logger/<name> with `wandb sync --sync-tensorboard` if you want it in wandb']
    return []


def radiometry_problems(opt: dict) -> list[str]:
    """The ``radiometry`` section read as the contract it states (see :mod:`segsr.radiometry.contract`)."""
    if not isinstance(opt.get('radiometry'), dict):
        return []
    try:
        Radiometry.from_options(opt['radiometry'])
    except SegSRError as error:
        return [str(error)]
    return []


def validate_options(opt: dict, source: str, is_train: bool) -> None:
    """Raise one SegSRError that lists every problem found in the options, or return if there are none."""
    problems: list[str] = []
    _check(opt, TRAIN_TOP if is_train else EVAL_TOP, '', problems, top_level=True)
    if not problems:
        problems = _scale_problems(opt) + size_problems(opt)
    problems += network_option_problems(opt) + discriminator_problems(opt) + wandb_problems(opt) + \
        radiometry_problems(opt)
    if is_train:
        problems += degradation_problems(opt)
    if problems:
        count = f'{len(problems)} problem{"s" if len(problems) > 1 else ""}'
        raise SegSRError(f'{count} in option file {source}: ' + '; '.join(problems))
