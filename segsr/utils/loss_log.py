"""The per-iteration loss record (``losses.jsonl``): one JSON object per training step."""

import json
import math
import os
from pathlib import Path

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_write_bytes


def _parse(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:  # the last line of a killed run may be cut short
        return None


class LossLog:
    """Appends ``{"iter", "epoch", "lr", <loss>..., "skipped"}`` lines (with ``grad_norm`` and ``clipped`` where
    ``train.grad_clip_max_norm`` is set); non-finite values are written as null.

    A resumed run first drops the records after its resume iteration, so the file always describes the
    steps that produced the current weights.
    """

    def __init__(self, path: str | os.PathLike, enabled: bool, resume_iter: int | None = None):
        self.path = Path(path)
        self.enabled = enabled
        if enabled and resume_iter is not None and self.path.is_file():
            records = [_parse(line) for line in self.path.read_text(encoding='utf-8').splitlines()]
            kept = [json.dumps(record) + '\n' for record in records if record and record['iter'] <= resume_iter]
            atomic_write_bytes(self.path, ''.join(kept).encode('utf-8'))

    def write(self, iteration: int, epoch: int, lr: float, losses: dict[str, float], skipped: bool,
              clipped: bool | None = None) -> None:
        """One step's record; ``clipped`` (whether its gradient norm was clipped) where clipping is on."""
        if not self.enabled:
            return
        record = {'iter': iteration, 'epoch': epoch, 'lr': lr,
                  **{name: value if math.isfinite(value) else None for name, value in losses.items()},
                  'skipped': skipped, **({} if clipped is None else {'clipped': clipped})}
        try:
            with self.path.open('a', encoding='utf-8') as handle:
                handle.write(json.dumps(record) + '\n')
        except OSError as err:
            raise SegSRError(f'cannot append to {self.path} ({err.strerror}); free space, then continue with '
                             '--auto_resume') from None


def read_loss_log(path: str | os.PathLike) -> list[dict]:
    """The complete records of a loss log, in order."""
    lines = Path(path).read_text(encoding='utf-8').splitlines()
    return [record for record in map(_parse, lines) if record is not None]
