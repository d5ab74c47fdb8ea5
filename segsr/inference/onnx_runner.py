"""Running an exported ONNX graph (``segsr-export``) on batches of numpy tiles with onnxruntime on the CPU.

It offers what the tiled engine reads from :class:`segsr.inference.engine.TileUpscaler`: ``in_channels``,
``scale``, ``sr_channels``, ``map_stages``, ``map_channels`` and ``__call__(tiles)``.
"""

from pathlib import Path

import numpy as np
import torch

from segsr.nn.padding import reflect_pad
from segsr.utils.errors import SegSRError
from segsr.utils.optional import import_optional

METADATA_PREFIX = 'segsr.'
REQUIRED_METADATA = ('scale', 'in_channels', 'size_multiple')


class OnnxTileUpscaler:
    """``(B, C, h, w)`` float32 array -> ``(B, C_sr, h*s, w*s)`` through onnxruntime.

    Tiles are reflect-padded to the graph's size multiple and the result cropped, exactly as the
    torch network pads its own input, so both paths see the same pixels.
    """

    map_stages: list[int] = []  # no guidance maps
    map_channels = 0

    def __init__(self, path: str | Path, threads: int | None = None):
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
            raise SegSRError(f'cannot load {path} with onnxruntime ({str(error).splitlines()[0]})') from None
        found = self.session.get_modelmeta().custom_metadata_map
        missing = [key for key in REQUIRED_METADATA if METADATA_PREFIX + key not in found]
        if missing:
            raise SegSRError(f'{path} lacks segsr metadata ({", ".join(missing)}): export it with segsr-export')
        self.scale, self.in_channels, self.multiple = (int(found[METADATA_PREFIX + key]) for key in REQUIRED_METADATA)
        self.input_name = self.session.get_inputs()[0].name
        self.sr_channels = self(np.zeros((1, self.in_channels, self.multiple, self.multiple), np.float32)).shape[1]

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        height, width = tiles.shape[-2:]
        padded = reflect_pad(torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)),
                             (-height) % self.multiple, (-width) % self.multiple)
        output = self.session.run(None, {self.input_name: padded.numpy()})[0]
        return output[..., : height * self.scale, : width * self.scale]
