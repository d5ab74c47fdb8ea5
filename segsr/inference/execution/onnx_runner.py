"""Running an exported ONNX graph (``segsr-export``) on batches of numpy tiles with onnxruntime on the CPU.

It offers what the tiled engine reads from :class:`segsr.inference.execution.engine.TileUpscaler`: ``in_channels``,
``scale``, ``sr_channels``, ``map_stages``, ``map_channels`` and ``__call__(tiles)``.
"""

import math
from pathlib import Path

import numpy as np
import torch

from segsr.nn.padding import reflect_pad
from segsr.self_ensemble import ensemble_arrays
from segsr.utils.errors import SegSRError
from segsr.utils.optional import import_optional

METADATA_PREFIX = 'segsr.'
# What segsr-infer needs from the graph's metadata, and the values it accepts (a hostile file may claim anything).
REQUIRED_METADATA = {'scale': (1, 16), 'in_channels': (1, 64), 'size_multiple': (1, 1024)}
PROBE_SEED = 0
PROBE_SIDE = 16  # large enough that every weight of a kernel meets a pixel of the image, not only padding


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_metadata(found: dict[str, str], path: Path) -> tuple[int, ...]:
    """``scale``, ``in_channels`` and ``size_multiple`` as whole numbers in their ranges, else a one-line refusal."""
    missing = [key for key in REQUIRED_METADATA if METADATA_PREFIX + key not in found]
    if missing:
        raise SegSRError(f'{path} lacks segsr metadata ({", ".join(missing)}): export it with segsr-export')
    values = []
    for key, (low, high) in REQUIRED_METADATA.items():
        text = found[METADATA_PREFIX + key]
        try:
            value = int(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not low <= value <= high:
            raise SegSRError(f'{path} has segsr metadata {key}={text[:40]!r}, not a whole number from {low} to '
                             f'{high}: export the graph again with segsr-export')
        values.append(value)
    return tuple(values)


class OnnxTileUpscaler:
    """``(B, C, h, w)`` float32 array -> ``(B, C_sr, h*s, w*s)`` through onnxruntime.

    Tiles are reflect-padded to the graph's size multiple and the result cropped, exactly as the
    torch network pads its own input, so both paths see the same pixels. With ``self_ensemble`` each
    batch runs through the 8 flips and rotations and the outputs are averaged, as with ``--weights``.
    """

    map_stages: list[int] = []  # no guidance maps
    map_channels = 0

    def __init__(self, path: str | Path, threads: int | None = None, self_ensemble: bool = False):
        onnxruntime = import_optional('onnxruntime', 'segsr-infer --onnx')
        path = Path(path)
        if not path.is_file():
            raise SegSRError(f'--onnx {path} does not exist: write it with segsr-export --weights W.pth '
                             f'--output {path}')
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise SegSRError(f'cannot load {path} with onnxruntime ({first_line(error)})') from None
        self.path = path
        self.scale, self.in_channels, self.multiple = read_metadata(self.session.get_modelmeta().custom_metadata_map,
                                                                    path)
        self.input_name = self.session.get_inputs()[0].name
        self.self_ensemble = self_ensemble
        side = self.multiple * math.ceil(PROBE_SIDE / self.multiple)
        probe = np.random.default_rng(PROBE_SEED).random((1, self.in_channels, side, side), dtype=np.float32)
        output = self._run(probe)
        if output.ndim != 4 or output.shape[-2:] != (side * self.scale,) * 2:
            raise SegSRError(f'{path} turns a {side}x{side} tile into shape {output.shape}, not '
                             f'x{self.scale} as its metadata says: export the graph again with segsr-export')
        if not np.isfinite(output).all():
            raise SegSRError(f'{path} outputs NaN or infinite values (its weights are not finite): export it again '
                             'from a checkpoint saved before training diverged')
        self.sr_channels = output.shape[1]

    def _run(self, tiles: np.ndarray) -> np.ndarray:
        height, width = tiles.shape[-2:]
        padded = reflect_pad(torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)),
                             (-height) % self.multiple, (-width) % self.multiple)
        try:
            output = self.session.run(None, {self.input_name: padded.numpy()})[0]
        except Exception as error:  # onnxruntime's own exception types: a graph that does not take these tiles
            raise SegSRError(f'{self.path} cannot run on {tiles.shape[1]}-channel tiles ({first_line(error)}); '
                             'export the graph again with segsr-export') from None
        return output[..., : height * self.scale, : width * self.scale]

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        return ensemble_arrays(self._run, tiles) if self.self_ensemble else self._run(tiles)
