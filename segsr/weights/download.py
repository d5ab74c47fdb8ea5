"""Weights fetched over HTTP(S) into segsr's cache, checked against their sha256 before anyone reads them.

A download is streamed into a hidden temporary file beside its final name and published only once its size
and hash are right, so an interrupted or corrupt download never sits under the name a later run trusts.
"""

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_open, write_failure

CACHE_ENV = 'SEGSR_CACHE'
CHUNK = 1 << 20
TIMEOUT_S = 60


def cache_root() -> Path:
    """``$SEGSR_CACHE``, else ``~/.cache/segsr``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / '.cache' / 'segsr').expanduser()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cached_path(url: str, sha256: str | None) -> Path:
    """Where ``url`` lives in the cache: under its sha256 when known (one file, whatever its URL), else under
    a digest of the URL; the URL's file name is kept, since readers tell formats by suffix."""
    name = Path(unquote(urlsplit(url).path)).name or 'weights'
    key = sha256 or 'url-' + hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_root() / key / name


def check_cached(path: Path, url: str, sha256: str | None) -> None:
    """A file already at its cache name is used only if its hash is the expected one."""
    if sha256 is None:
        return
    found = file_sha256(path)
    if found != sha256:
        raise SegSRError(f'cached weights {path} have sha256 {found}, not the {sha256} given for {url}: '
                         f'delete the file, or place the right one there')


def offline_reason(error: BaseException) -> str:
    """Why the server could not be reached, in a few words."""
    reason = getattr(error, 'reason', error)
    if isinstance(reason, socket.gaierror):
        return 'the host name cannot be resolved'
    if isinstance(reason, ConnectionError):
        return 'the connection was refused or reset'
    if isinstance(reason, TimeoutError):
        return f'no answer within {TIMEOUT_S} s'
    return str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__


def fetch_url(url: str, sha256: str | None = None) -> Path:
    """The cached file of ``url``, downloaded first if it is not there yet; checked against ``sha256``."""
    final = cached_path(url, sha256)
    if final.is_file():
        check_cached(final, url, sha256)
        return final
    by_hand = f'download it by hand and place it at {final}'
    request = urllib.request.Request(url, headers={'User-Agent': 'segsr'})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, atomic_open(final) as handle:
            digest, size = hashlib.sha256(), 0
            while block := response.read(CHUNK):
                digest.update(block)
                handle.write(block)
                size += len(block)
            expected = response.headers.get('Content-Length')
            if expected is not None and int(expected) != size:
                raise SegSRError(f'the download of {url} stopped after {size} of {expected} bytes and was deleted: '
                                 f'try again, or {by_hand}')
            if sha256 is not None and digest.hexdigest() != sha256:
                raise SegSRError(f'{url} downloaded with sha256 {digest.hexdigest()}, not the expected {sha256}; '
                                 f'the download was deleted: check the catalogue entry, or {by_hand}')
    except urllib.error.HTTPError as error:
        raise SegSRError(f'cannot download {url} (HTTP {error.code} {error.reason}): check the URL, or {by_hand}'
                         ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        raise SegSRError(f'cannot download {url} ({offline_reason(error)}; offline?): {by_hand}') from None
    except OSError as error:  # the cache's disk, not the network
        raise write_failure(final, error, 'downloaded weights', f'set {CACHE_ENV} to a folder with room') from None
    return final
