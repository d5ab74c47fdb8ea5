"""Fixes that basicsr 1.4.2 needs on current torch and torchvision.

Imported by ``segsr/__init__.py`` before anything touches basicsr. The file needs nothing of segsr
until it fails, so a process that must not import segsr (the published code's, whose package has the
same name) loads it by path and calls :func:`apply` before its own basicsr import.
"""

import sys

REINSTALL_HINT = (
    'reinstall torch and torchvision as the matching pair from the registry: '
    'pip uninstall -y torch torchvision && pip install "torch>=2.14,<2.15" "torchvision>=0.29,<0.30"'
)


def _import_torchvision():
    try:
        import torchvision
        import torchvision.transforms.functional as tv_functional
    except (ImportError, RuntimeError) as err:
        from segsr.utils.errors import SegSRError  # only here: see the module docstring

        raise SegSRError(f'torchvision cannot be imported ({str(err).splitlines()[0]}); {REINSTALL_HINT}') from None
    return torchvision, tv_functional


def apply() -> None:
    """Map the module basicsr imports from torchvision < 0.17 onto its successor."""
    _, tv_functional = _import_torchvision()
    sys.modules.setdefault('torchvision.transforms.functional_tensor', tv_functional)
