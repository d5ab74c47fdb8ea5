"""Checks that the types named in the options are registered, before anything is built."""

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

from segsr.utils.errors import SegSRError


def _check(registry, name: object, where: str) -> None:
    if name not in registry:
        known = ', '.join(sorted(registry.keys()))
        raise SegSRError(f'{where}: unknown {registry._name.lower().replace("_", " ")} type "{name}"; '
                         f'registered types are: {known}')


# Published model types segsr refuses, and why (docs/interop.md).
UNSUPPORTED_MODELS = {
    name: (f'model_type {name} (Real-HAT) is not supported: it synthesises real-world degradations on the GPU '
           f'with basicsr\'s {base}, which hard-codes CUDA{extra} and bypasses segsr\'s checkpoints, resume and '
           'NaN-step handling; train on bicubic pairs with model_type HATModel, or use the HAT repository for Real-HAT')
    for name, base, extra in (
        ('RealHATMSEModel', 'RealESRNetModel', ''),
        ('RealHATGANModel', 'RealESRGANModel', ', needs a discriminator and VGG weights fetched at run time,'),
    )
}


def check_registered_types(opt: dict) -> None:
    """Raise a one-line error naming the option and listing the registered types."""
    if opt.get('model_type') in UNSUPPORTED_MODELS:
        raise SegSRError(UNSUPPORTED_MODELS[opt['model_type']])
    _check(MODEL_REGISTRY, opt.get('model_type', 'SRModel'), 'model_type')
    for key, section in opt.items():
        if key.startswith('network_') and isinstance(section, dict):
            _check(ARCH_REGISTRY, section.get('type'), f'{key}.type')
    for phase, dataset in opt.get('datasets', {}).items():
        _check(DATASET_REGISTRY, dataset.get('type'), f'datasets.{phase}.type')
    for key, section in opt.get('train', {}).items():
        if key.endswith('_opt') and isinstance(section, dict) and 'type' in section:
            _check(LOSS_REGISTRY, section['type'], f'train.{key}.type')
