"""segsr: semantic-guided super-resolution of remote-sensing imagery on basicsr.

Importing the package patches basicsr for current torch/torchvision and fills
basicsr's registries with every arch, dataset and model defined here.
"""

from segsr import compat

compat.apply()

from segsr import archs, data, metrics, models  # noqa: E402,F401  (registration side effects)

__version__ = '0.1.0'


def __getattr__(name: str):
    """``segsr.load`` and ``segsr.Upscaler`` (the inference API) are imported on first use, keeping ``import
    segsr`` free of the raster stack."""
    if name in ('load', 'Upscaler'):
        from segsr import api

        return getattr(api, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
