"""A weights reference made a local file: a path as it is, a catalogue name, an ``https://`` URL or an
``hf://owner/repo/path/file[@revision]`` file of the Hugging Face Hub, fetched once into segsr's cache.

Everything fetched is checked against the sha256 a catalogue gives before it is used, and its sha256 is
recorded in :class:`WeightsFile`; offline, the error names the file to download and where to put it.
"""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segsr.utils.errors import SegSRError
from segsr.utils.optional import import_optional
from segsr.weights.catalogue import SCHEMES, catalogue
from segsr.weights.download import cache_root, fetch_url, file_sha256

HUB_PACKAGE = 'pip install "segsr[hub]" (or pip install huggingface_hub)'


@dataclass(frozen=True)
class WeightsFile:
    """A reference as given and the local file it names; ``sha256`` is known for fetched files."""

    reference: str
    path: Path
    sha256: str | None = None


@dataclass(frozen=True)
class HubFile:
    """The parts of ``hf://owner/repo/path/in/repo[@revision]``."""

    repo_id: str
    filename: str
    revision: str | None

    @classmethod
    def parse(cls, url: str) -> 'HubFile':
        body, _, revision = url.removeprefix('hf://').partition('@')
        parts = body.split('/')
        if len(parts) < 3 or not all(parts):
            raise SegSRError(f'{url} is not a hub file: write hf://owner/repo/path/model.safetensors[@revision]')
        return cls('/'.join(parts[:2]), '/'.join(parts[2:]), revision or None)

    @property
    def folder(self) -> Path:
        """The cache folder this file of this revision is kept in, under its path in the repository."""
        return cache_root() / 'hf' / self.repo_id / (self.revision or 'main')


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fetch_hub(url: str, sha256: str | None = None) -> Path:
    """The hub file ``url`` through huggingface_hub (which honours HF_HUB_OFFLINE, HF_ENDPOINT and tokens),
    kept in segsr's cache; a file whose hash differs from ``sha256`` is deleted and refused."""
    hub = HubFile.parse(url)
    huggingface_hub = import_optional('huggingface_hub', f'loading {url}', HUB_PACKAGE)
    errors = import_optional('huggingface_hub.errors', f'loading {url}', HUB_PACKAGE)
    final = hub.folder / hub.filename
    by_hand = f'download it by hand and place it at {final}'
    hub_logger = logging.getLogger('huggingface_hub')
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # offline with the file cached, the hub warns that it could not check
    placed_before = final.exists()  # by an earlier run or by hand: never deleted here
    try:
        path = Path(huggingface_hub.hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision,
                                                    local_dir=hub.folder))
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        raise SegSRError(f'cannot fetch {url} (offline, HF_HUB_OFFLINE set or the hub unreachable, and no copy '
                         f'cached): {by_hand}') from None
    except (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError) as error:
        raise SegSRError(f'cannot fetch {url} ({first_line(error):.100}): check the repository, path and revision, '
                         f'or {by_hand}') from None
    except OSError as error:  # other answers of the hub (401, 500), or the cache's disk
        raise SegSRError(f'cannot fetch {url} ({first_line(error):.100}): {by_hand}') from None
    finally:
        hub_logger.setLevel(level)
    found = None if sha256 is None else file_sha256(path)
    if found != sha256:
        if placed_before:
            raise SegSRError(f'{path} (for {url}) has sha256 {found}, not the expected {sha256}: delete the file, '
                             f'or place the right one there')
        path.unlink()  # downloaded by this call
        raise SegSRError(f'{url} came with sha256 {found}, not the expected {sha256}; the file was deleted: '
                         f'check the catalogue entry, or {by_hand}')
    return path


def fetch(url: str, sha256: str | None = None) -> Path:
    """The local file of an ``hf://``, ``https://`` or ``http://`` URL."""
    if url.startswith('hf://'):
        return fetch_hub(url, sha256)
    return fetch_url(url, sha256)


def resolve_weights(reference: str | os.PathLike,
                    catalogues: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> WeightsFile:
    """The local file a reference names. An existing path is used as it is; a name the catalogues
    (:func:`segsr.weights.catalogue.catalogue`) hold is fetched from its URL; any other text without a
    scheme stays a path, so a missing file is reported by the reader as before."""
    text = os.fspath(reference)
    if '://' in text:
        if not text.startswith(SCHEMES):
            raise SegSRError(f'weights {text}: use a path, a catalogue name, hf://owner/repo/file or https://...')
        path = fetch(text)
        return WeightsFile(text, path, file_sha256(path))
    if isinstance(reference, os.PathLike) or Path(text).exists():
        return WeightsFile(text, Path(text))
    entry = catalogue(catalogues).get(text)
    if entry is None:
        return WeightsFile(text, Path(text))
    path = fetch(entry.url, entry.sha256)
    return WeightsFile(text, path, entry.sha256 or file_sha256(path))
