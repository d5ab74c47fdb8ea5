"""Models known by name: catalogue files that map a name to its URL, sha256 and a one-line summary of its card.

segsr ships :data:`SHIPPED` (no entries yet); users add their own files through ``$SEGSR_CATALOGUE``
(paths joined by ``os.pathsep``) or a ``catalogue`` argument, later files overriding earlier ones by name.
A file is YAML (read with the option loader, never one that builds objects) or JSON (``.json``)::

    models:
      hat-s2-x4:
        url: https://example.org/hat_s2_x4.safetensors   # or hf://owner/repo/file[@revision]
        sha256: 64 hex digits
        card: HAT x4 for Sentinel-2 B4,B3,B2,B8 reflectance
"""

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segsr.options.safe_yaml import load_option_file
from segsr.utils.errors import SegSRError

CATALOGUE_ENV = 'SEGSR_CATALOGUE'
SHIPPED = Path(__file__).with_name('catalogue.yml')
SCHEMES = ('https://', 'http://', 'hf://')
SHA256 = re.compile(r'[0-9a-f]{64}')


@dataclass(frozen=True)
class Entry:
    """One model of a catalogue: where to fetch it and the hash it must have."""

    name: str
    url: str
    sha256: str | None
    card: str
    source: Path


def catalogue_files(extra: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """The shipped catalogue, then ``$SEGSR_CATALOGUE``'s files, then ``extra``'s, in the order they override."""
    given = [] if extra is None else [extra] if isinstance(extra, str | os.PathLike) else list(extra)
    from_env = [part for part in os.environ.get(CATALOGUE_ENV, '').split(os.pathsep) if part]
    return [SHIPPED, *(Path(path) for path in from_env + given)]


def _read(path: Path) -> dict:
    if not path.is_file():
        raise SegSRError(f'catalogue {path} does not exist: fix {CATALOGUE_ENV} or the catalogue argument')
    if path.suffix.lower() != '.json':
        return load_option_file(path)
    try:
        content = json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SegSRError(f'catalogue {path} is not valid JSON ({error}); fix or remove it') from None
    if not isinstance(content, dict):
        raise SegSRError(f'catalogue {path} must hold a mapping with a "models" key, not {type(content).__name__}')
    return content


def _entry(name: str, fields: object, path: Path) -> Entry:
    where = f'catalogue {path}, model {name!r}'
    if not isinstance(fields, dict) or not isinstance(fields.get('url'), str):
        raise SegSRError(f'{where}: give a mapping with url (and sha256, card)')
    url, sha256, card = fields['url'], fields.get('sha256'), fields.get('card', '')
    unknown = sorted(set(fields) - {'url', 'sha256', 'card'})
    if unknown:
        raise SegSRError(f'{where}: unknown key(s) {", ".join(map(str, unknown))}; use url, sha256 and card')
    if not url.startswith(SCHEMES):
        raise SegSRError(f'{where}: url {url!r} must start with {", ".join(SCHEMES)}')
    if sha256 is not None and not (isinstance(sha256, str) and SHA256.fullmatch(sha256.lower())):
        raise SegSRError(f'{where}: sha256 {sha256!r} is not 64 hexadecimal digits (sha256sum prints them)')
    return Entry(name, url, sha256.lower() if sha256 else None, str(card), path)


def read_catalogue(path: Path) -> dict[str, Entry]:
    """The entries of one catalogue file; a malformed file or entry is a one-line error naming it."""
    models = _read(path).get('models') or {}
    if not isinstance(models, dict):
        raise SegSRError(f'catalogue {path}: "models" must map names to entries, not be a {type(models).__name__}')
    return {str(name): _entry(str(name), fields, path) for name, fields in models.items()}


def catalogue(extra: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> dict[str, Entry]:
    """Every model the catalogues name, a later file's entry replacing an earlier one of the same name."""
    entries: dict[str, Entry] = {}
    for path in catalogue_files(extra):
        entries.update(read_catalogue(path))
    return entries
