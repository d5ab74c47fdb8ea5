"""Checks that the types named in the options are registered, before anything is built."""

import inspect

import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from segsr.utils.errors import SegSRError


def _check(registry, name: object, where: str) -> None:
    if name not in registry:
        known = ', '.join(sorted(registry.keys()))
        raise SegSRError(f'{where}: unknown {registry._name.lower().replace("_", " ")} type "{name}"; '
                         f'registered types are: {known}')


def _optimizer_refusal(model, optim_type: str, options: dict) -> Exception | None:
    """What the model's ``get_optimizer`` raises for these options on a one-parameter probe, if anything."""
    try:
        model.get_optimizer(None, optim_type, [torch.zeros(1, requires_grad=True)], **options)
    except (NotImplementedError, TypeError, ValueError, KeyError) as err:
        return err
    return None


def offered_optimizers(model) -> list[str]:
    """The torch optimisers the model's ``get_optimizer`` builds (basicsr 1.4.2 offers Adam only)."""
    names = [name for name, cls in vars(torch.optim).items()
             if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer]
    return [name for name in sorted(names) if _optimizer_refusal(model, name, {'lr': 1e-3}) is None]


def check_optimizers(opt: dict, model_type: str) -> None:
    """Each ``train.optim_*`` is built on a probe parameter now, so an optimiser basicsr lacks, or options
    it refuses, stop the run before any data is read, not when the model is built."""
    model = MODEL_REGISTRY.get(model_type)
    for key, section in (opt.get('train') or {}).items():
        if not (key.startswith('optim_') and isinstance(section, dict) and isinstance(section.get('type'), str)):
            continue
        options = {name: value for name, value in section.items() if name != 'type'}
        refusal = _optimizer_refusal(model, section['type'], options)
        if isinstance(refusal, NotImplementedError):
            raise SegSRError(f'train.{key}.type: {model_type} offers no optimiser "{section["type"]}"; '
                             f'use one of: {", ".join(offered_optimizers(model))}')
        if refusal is not None:
            reason = str(refusal).strip().splitlines()[0] if str(refusal).strip() else type(refusal).__name__
            raise SegSRError(f'train.{key}: {section["type"]} refuses these options ({reason}); fix them')


def check_registered_types(opt: dict) -> None:
    """Raise a one-line error naming the option and listing the registered types."""
    _check(MODEL_REGISTRY, opt.get('model_type', 'SRModel'), 'model_type')
    for key, section in opt.items():
        if key.startswith('network_') and isinstance(section, dict):
            _check(ARCH_REGISTRY, section.get('type'), f'{key}.type')
    for phase, dataset in opt.get('datasets', {}).items():
        _check(DATASET_REGISTRY, dataset.get('type'), f'datasets.{phase}.type')
    for key, section in opt.get('train', {}).items():
        if key.endswith('_opt') and isinstance(section, dict) and 'type' in section:
            _check(LOSS_REGISTRY, section['type'], f'train.{key}.type')
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, dict):
            _check(METRIC_REGISTRY, metric.get('type'), f'val.metrics.{name}.type')
    check_optimizers(opt, opt.get('model_type', 'SRModel'))
