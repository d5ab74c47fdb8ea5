"""Packages only some features need (ONNX export and inference, xarray input), imported when they are used."""

import importlib
from types import ModuleType

from segsr.utils.errors import SegSRError

ONNX_PACKAGES = 'pip install onnx onnxscript onnxruntime (or pip install -e ".[onnx]")'


def import_optional(module: str, feature: str, install: str = ONNX_PACKAGES) -> ModuleType:
    """``module``, or a one-line error saying how to install what ``feature`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SegSRError(f'{feature} needs the {module} package, which is not installed: {install}') from None
