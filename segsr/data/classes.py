"""The scene class of an image, for per-class result tables.

The prepared dataset's manifest.json is the authority; without one the class is read from
the file name (``agricultural07.png`` -> ``agricultural``, ``airport_12.png`` -> ``airport``).
"""

import json
import os
import re
from pathlib import Path

MANIFEST_NAME = 'manifest.json'
UNKNOWN_CLASS = 'unknown'


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest written into ``folder`` by dataset preparation, else None."""
    path = Path(folder) / MANIFEST_NAME
    return json.loads(path.read_text(encoding='utf-8')) if path.is_file() else None


def load_manifest(dataroot: str | os.PathLike) -> dict | None:
    """The manifest in ``dataroot`` or its parent (``datasets/<Name>/HR`` -> ``datasets/<Name>``), else None."""
    root = Path(dataroot)
    return next((manifest for folder in (root, root.parent) if (manifest := read_manifest(folder))), None)


def class_from_name(path: str | os.PathLike) -> str:
    """The file stem without its trailing number and separator."""
    stem = Path(path).stem
    label = re.sub(r'[\s_-]*\d+$', '', stem)
    return label or UNKNOWN_CLASS


def image_class(path: str | os.PathLike, manifest: dict | None) -> str:
    """Class of an HR or LR file: looked up by file name in the manifest, else derived from the name."""
    if manifest is not None:
        entry = manifest.get('images', {}).get(Path(path).with_suffix('.png').name)
        if entry is not None:
            return entry['class']
    return class_from_name(path)
