"""The run manifest: one JSON file in the output folder saying, per input, what happened to it.

Rank 0 (or the only process) rewrites it atomically as records arrive, so an interrupted run leaves a
manifest that says which inputs were done; the summary is added when the run ends.
"""

import json
import time
from pathlib import Path

from segsr.inference.planning.distributed import Ranks
from segsr.utils.files import atomic_write_bytes

MANIFEST_NAME = 'segsr-manifest.json'
STATUSES = ('pending', 'done', 'skipped', 'failed')


def manifest_path(output: Path, ranks: Ranks) -> Path:
    """Independent shards each keep their own manifest; the processes of one launched run share one."""
    if ranks.launcher == 'shard':
        return output / f'segsr-manifest-shard-{ranks.rank}-of-{ranks.world}.json'
    return output / MANIFEST_NAME


def record(source, status: str, output=None, seconds: float | None = None, tiles: int | None = None,
           rank: int | str | None = None, error: str | None = None, pixels: int = 0) -> dict:
    """One input's entry; ``pixels`` (input pixels) feeds the run's MP/s."""
    return {'input': str(source), 'status': status, 'output': None if output is None else str(output),
            'seconds': None if seconds is None else round(seconds, 3), 'tiles': tiles, 'rank': rank,
            'error': error, 'pixels': pixels}


class Manifest:
    def __init__(self, path: Path, entries: list[dict], run: dict):
        self.path = path
        self.run = run
        self.entries = {entry['input']: entry for entry in entries}
        self.started = time.monotonic()
        self.summary: dict | None = None
        self.written = ''

    def update(self, entry: dict) -> None:
        self.entries[entry['input']] = entry

    def count(self, status: str) -> int:
        return sum(entry['status'] == status for entry in self.entries.values())

    def finish(self) -> str:
        """Add the summary; return it as one line."""
        elapsed = time.monotonic() - self.started
        pixels = sum(entry['pixels'] for entry in self.entries.values() if entry['status'] == 'done')
        self.summary = {status: self.count(status) for status in STATUSES} | {
            'elapsed_s': round(elapsed, 3), 'megapixels_per_s': round(pixels / 1e6 / max(elapsed, 1e-9), 4)}
        summary = self.summary
        return (f'done {summary["done"]}, skipped {summary["skipped"]}, failed {summary["failed"]}, '
                f'pending {summary["pending"]} in {elapsed:.1f} s, {summary["megapixels_per_s"]:.3f} MP/s '
                f'(input pixels); manifest {self.path}')

    def write(self) -> None:
        """Rewrite the file atomically when something changed."""
        text = json.dumps({'run': self.run, 'summary': self.summary, 'inputs': list(self.entries.values())},
                          indent=1)
        if text != self.written:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, text.encode('utf-8'))
            self.written = text
