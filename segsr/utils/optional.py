"""Packages only some commands need (ONNX export and inference), imported when those commands run."""

import importlib
from types import ModuleType

from segsr.utils.errors import SegSRError

ONNX_PACKAGES = 'pip install onnx onnxscript onnxruntime (or pip install -e ".[onnx]")'


def import_optional(module: str, feature: str) -> ModuleType:
    """``module``, or a one-line error saying how to install what ``feature`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SegSRError(f'{feature} needs the {module} package, which is not installed: {ONNX_PACKAGES}') from None
