"""Module discovery in basicsr's style: one registered component per ``*_<kind>.py`` file."""

import importlib
from pathlib import Path


def import_modules(package: str, package_file: str, suffix: str) -> None:
    """Import every ``*<suffix>.py`` beside ``package_file`` so its decorators register it."""
    for module in sorted(Path(package_file).parent.glob(f'*{suffix}.py')):
        importlib.import_module(f'{package}.{module.stem}')
