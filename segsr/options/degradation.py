"""The options of training degradations (``datasets.train.degradation`` and its settings), checked up front.

Real-ESRGAN's keys are those of its published option files (and HAT's Real-HAT files): the stage-wise keys at
the top level, the kernel keys in the training dataset; a dataset may also hold them in a ``realesrgan``
mapping. The defaults are Real-ESRGAN's published x4 values.
"""

import difflib

DEGRADATION_NAMES = ('bicubic', 'realesrgan', 'sensor')

KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
KERNEL_DEFAULTS = {
    'blur_kernel_size': 21, 'kernel_list': list(KERNEL_TYPES), 'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1, 'blur_sigma': [0.2, 3.0], 'betag_range': [0.5, 4.0], 'betap_range': [1.0, 2.0],
    'blur_kernel_size2': 21, 'kernel_list2': list(KERNEL_TYPES), 'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1, 'blur_sigma2': [0.2, 1.5], 'betag_range2': [0.5, 4.0], 'betap_range2': [1.0, 2.0],
    'final_sinc_prob': 0.8,
}
STAGE_DEFAULTS = {
    'gt_usm': True, 'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5,
    'noise_range': [1.0, 30.0], 'poisson_scale_range': [0.05, 3.0], 'gray_noise_prob': 0.4, 'jpeg_range': [30, 95],
    'second_blur_prob': 0.8, 'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5, 'noise_range2': [1.0, 25.0], 'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4, 'jpeg_range2': [30, 95], 'queue_size': 180,
}
REALESRGAN_DEFAULTS = {**KERNEL_DEFAULTS, **STAGE_DEFAULTS}
USM_LOSS_KEYS = ('l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm')
"""Real-ESRGAN's GAN-model keys: which losses compare with the unsharp-masked HR (unset: True), the others
with the plain HR. Where a file sets any, they take over from ``gt_usm``."""
SENSOR_KEYS = ('mtf', 'snr', 'reference', 'read_fraction', 'shift', 'shift_range', 'bits')

PROBABILITIES = ('sinc_prob', 'sinc_prob2', 'final_sinc_prob', 'gaussian_noise_prob', 'gaussian_noise_prob2',
                 'gray_noise_prob', 'gray_noise_prob2', 'second_blur_prob')
DISTRIBUTIONS = ('kernel_prob', 'kernel_prob2', 'resize_prob', 'resize_prob2')
KERNEL_SIZES = ('blur_kernel_size', 'blur_kernel_size2')
MIN_KERNEL = 7
SUM_TOLERANCE = 1e-6


def degradation_names(dataset: dict) -> list[str]:
    """The chain a training dataset states (``bicubic`` when it states none); RealESRGANDataset implies Real-ESRGAN."""
    value = dataset.get('degradation')
    if value is None:
        return ['realesrgan'] if dataset.get('type') == 'RealESRGANDataset' else ['bicubic']
    return list(value) if isinstance(value, list | tuple) else [value]


def usm_targets(opt: dict) -> dict[str, bool] | None:
    """Whether each loss sees the unsharp-masked HR (see USM_LOSS_KEYS), or None where no key is set."""
    if not any(key in opt for key in USM_LOSS_KEYS):
        return None
    return {key: opt.get(key, True) for key in USM_LOSS_KEYS}


def realesrgan_settings(opt: dict, dataset: dict) -> dict:
    """Real-ESRGAN's settings: the defaults, then the top-level keys, then the dataset's own and its mapping.
    With per-loss USM keys the degradation hands on the plain HR, which the model sharpens per loss."""
    top = {key: opt[key] for key in STAGE_DEFAULTS if key in opt}
    own = {key: dataset[key] for key in REALESRGAN_DEFAULTS if key in dataset}
    per_loss = {'gt_usm': False} if usm_targets(opt) is not None else {}
    return {**REALESRGAN_DEFAULTS, **top, **own, **(dataset.get('realesrgan') or {}), **per_loss}


def _unknown(keys, known, where: str) -> list[str]:
    problems = []
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f'known keys: {", ".join(known)}'
            problems.append(f'{where}.{key}: unknown key; {hint}')
    return problems


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def realesrgan_problems(settings: dict, where: str, bands: int | None, crop: int | None, scale: int,
                        batch: int | None) -> list[str]:
    problems = []
    for key in PROBABILITIES:
        value = settings[key]
        if not _number(value) or not 0 <= value <= 1:
            problems.append(f'{where}.{key}: {value!r} is not a probability; give a number in [0, 1]')
    for key in DISTRIBUTIONS:
        value = settings[key]
        if not isinstance(value, list | tuple) or not all(_number(p) and 0 <= p <= 1 for p in value):
            problems.append(f'{where}.{key}: {value!r} must be a list of probabilities in [0, 1]')
        elif abs(sum(value) - 1) > SUM_TOLERANCE:
            problems.append(f'{where}.{key}: {list(value)} sums to {sum(value):g}, not 1; make the shares add up to 1')
    for suffix in ('', '2'):
        kinds, shares = settings[f'kernel_list{suffix}'], settings[f'kernel_prob{suffix}']
        bad = [kind for kind in kinds if kind not in KERNEL_TYPES]
        if bad:
            problems.append(f'{where}.kernel_list{suffix}: unknown kernel {bad[0]!r}; known: {", ".join(KERNEL_TYPES)}')
        elif isinstance(shares, list | tuple) and len(shares) != len(kinds):
            problems.append(f'{where}.kernel_prob{suffix}: {len(shares)} shares for {len(kinds)} kernels in '
                            f'kernel_list{suffix}; give one share per kernel')
    lr_crop = crop // scale if crop else None
    for key in KERNEL_SIZES:
        size = settings[key]
        if not isinstance(size, int) or isinstance(size, bool) or size % 2 == 0 or size < MIN_KERNEL:
            problems.append(f'{where}.{key}: {size!r} must be an odd integer of at least {MIN_KERNEL}; '
                            f'use e.g. {MIN_KERNEL} or 21')
        elif lr_crop and size > lr_crop:
            problems.append(f'{where}.{key}: {size} is larger than the LR crop (gt_size / scale = {lr_crop}); '
                            'use a smaller kernel or a larger gt_size')
    if bands is not None and bands != 3:
        if settings['jpeg_range'] is not None or settings['jpeg_range2'] is not None:
            problems.append(f'{where}.jpeg_range: JPEG compresses 3-band RGB only and this network has {bands} bands; '
                            'set jpeg_range: ~ and jpeg_range2: ~')
        if settings['gray_noise_prob'] or settings['gray_noise_prob2']:
            problems.append(f'{where}.gray_noise_prob: grey noise needs 3-band RGB and this network has {bands} '
                            'bands; set gray_noise_prob: 0 and gray_noise_prob2: 0')
    queue = settings['queue_size']
    if not isinstance(queue, int) or isinstance(queue, bool) or queue < 0:
        problems.append(f'queue_size: {queue!r} must be a whole number of training pairs (0: no pool)')
    elif batch and queue % batch:
        problems.append(f'queue_size: {queue} is not divisible by the batch size {batch}; use a multiple of {batch}')
    return problems


def sensor_problems(sensor: dict, where: str) -> list[str]:
    problems = _unknown(sensor, list(SENSOR_KEYS), where)
    if 'mtf' not in sensor:
        problems.append(f'{where}.mtf: missing; give the MTF at LR Nyquist, one value or one per band, in (0, 1)')
    flat = lambda value: [v for entry in (value if isinstance(value, list | tuple) else [value])  # noqa: E731
                          for v in (entry if isinstance(entry, list | tuple) else [entry])]
    for value in flat(sensor.get('mtf', [])):
        if not _number(value) or not 0 < value < 1:
            problems.append(f'{where}.mtf: {value!r} is outside (0, 1); the MTF at LR Nyquist lies strictly between '
                            '0 and 1')
            break
    for key in ('snr', 'reference'):
        for value in flat(sensor.get(key) or []):
            if not _number(value) or value <= 0:
                problems.append(f'{where}.{key}: {value!r} must be greater than 0')
                break
    if sensor.get('snr') is not None and sensor.get('reference') is None:
        problems.append(f'{where}.reference: missing; give the physical level (per band) at which snr holds')
    fraction = sensor.get('read_fraction', 0.5)
    if not _number(fraction) or not 0 <= fraction <= 1:
        problems.append(f'{where}.read_fraction: {fraction!r} must lie in [0, 1]')
    bits = sensor.get('bits')
    if bits is not None and (not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 32):
        problems.append(f'{where}.bits: {bits!r} must be an integer bit depth from 1 to 32, or ~ for none')
    return problems


def degradation_problems(opt: dict) -> list[str]:
    """Every problem of the training dataset's degradation chain and settings, one line each."""
    problems = [f'{key}: {opt[key]!r} is not true or false; write True or False' for key in USM_LOSS_KEYS
                if key in opt and not isinstance(opt[key], bool)]
    dataset = ((opt.get('datasets') or {}).get('train')) or {}
    names = degradation_names(dataset)
    for name in names:
        if name not in DEGRADATION_NAMES:
            close = difflib.get_close_matches(str(name), DEGRADATION_NAMES, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f'known: {", ".join(DEGRADATION_NAMES)}'
            problems.append(f'datasets.train.degradation: unknown degradation {name!r}; {hint}')
    for phase, other in (opt.get('datasets') or {}).items():
        if phase != 'train' and isinstance(other, dict) and 'degradation' in other:
            problems.append(f'datasets.{phase}.degradation: degradations apply to training data only; give this '
                            'dataset its LR files (dataroot_lq) or drop the key')
    if 'realesrgan' in dataset:
        problems += _unknown(dataset['realesrgan'] or {}, list(REALESRGAN_DEFAULTS), 'datasets.train.realesrgan')
    if 'sensor' in names:
        problems += sensor_problems(dataset.get('sensor') or {}, 'datasets.train.sensor')
    elif 'sensor' in dataset:
        problems.append('datasets.train.sensor: settings of a degradation the chain does not use; add sensor to '
                        'datasets.train.degradation or drop the key')
    if 'realesrgan' in names and not problems:
        scale = int(opt.get('scale') or 1)
        bands = (opt.get('network_g') or {}).get('in_chans', (opt.get('network_g') or {}).get('num_in_ch'))
        problems += realesrgan_problems(realesrgan_settings(opt, dataset), 'datasets.train', bands,
                                        dataset.get('gt_size') or opt.get('gt_size'), scale,
                                        dataset.get('batch_size_per_gpu'))
    return problems
