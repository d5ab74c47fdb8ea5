"""What a metric is given: basicsr's ``img``/``img2`` plus the inputs its signature asks for.

basicsr calls every metric with the output (``img``) and the HR (``img2``) only. Metrics here also
need the LR input (``lq``), the self-ensemble spread (``spread``), the image's class (``label``) or
the dataset's classes (``class_names``); spectral metrics of raster datasets take the contract's
per-band ``data_range``, the nodata ``mask`` and the ``scale``. A registered metric that names one of
these as a parameter receives it, so the evaluation loop serves old and new metrics alike.
"""

import inspect
from copy import deepcopy

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

EXTRA_INPUTS = ('img2', 'lq', 'spread', 'label', 'class_names', 'data_range', 'mask', 'scale')


def metric_inputs(metric_opt: dict) -> set[str]:
    """The inputs beyond ``img`` that the metric of ``metric_opt`` takes; one with ``**kwargs`` gets ``img2``
    as basicsr gives it."""
    parameters = inspect.signature(METRIC_REGISTRY.get(metric_opt['type'])).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {name for name in EXTRA_INPUTS if name in parameters} | ({'img2'} if takes_any else set())


def calculate(metric_opt: dict, available: dict) -> float | np.ndarray:
    """The metric of ``metric_opt`` on the inputs in ``available`` that it takes: a number, or one per band."""
    options = deepcopy(metric_opt)
    metric = METRIC_REGISTRY.get(options.pop('type'))
    wanted = metric_inputs(metric_opt) | {'img'}
    return metric(**{k: v for k, v in available.items() if k in wanted}, **options)
