"""Running a network on batches of numpy tiles: device placement, bf16 autocast, guidance maps."""

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segsr.utils.errors import SegSRError

PROBE_SIZE = 16


def resolve_device(name: str | None) -> torch.device:
    """CUDA when present unless told otherwise; asking for CUDA without it is a user error."""
    if name is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise SegSRError(f'--device {name} asked for but CUDA is not available: use --device cpu')
    return torch.device(name)


def makes_guidance(network: nn.Module) -> bool:
    """Whether the network can return its per-stage guidance maps (``forward(x, return_maps=True)``)."""
    return 'return_maps' in inspect.signature(network.forward).parameters


class TileUpscaler:
    """``(B, C, h, w)`` float32 array -> ``(B, C_sr + C_maps, h*s, w*s)`` float32 array.

    With ``guidance`` the network's maps are resized bilinearly to the output size and appended
    as extra channels, so they are tiled and blended exactly like the image.
    """

    def __init__(self, network: nn.Module, in_channels: int, device: torch.device, bf16: bool, guidance: bool):
        if guidance and not makes_guidance(network):
            name = type(network).__name__
            raise SegSRError(f'{name} produces no guidance maps: drop --save-guidance or use a SEGSR checkpoint')
        self.network = network.to(device)
        self.in_channels = in_channels
        self.device = device
        self.bf16 = bf16
        self.guidance = guidance
        image, maps = self._forward(torch.zeros(1, in_channels, PROBE_SIZE, PROBE_SIZE, device=device))
        self.scale = image.shape[-1] // PROBE_SIZE
        if self.scale < 1 or tuple(image.shape[-2:]) != (PROBE_SIZE * self.scale,) * 2:
            shape = tuple(image.shape)
            raise SegSRError(f'network output {shape} for a {PROBE_SIZE}px input is not an integer upscale')
        self.sr_channels = image.shape[1]
        self.map_channels = sum(m.shape[1] for m in maps)

    @torch.inference_mode()
    def _forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if not self.guidance:
                return self.network(inputs).float(), []
            image, maps = self.network(inputs, return_maps=True)
        size = image.shape[-2:]
        maps = [m.unsqueeze(1) if m.ndim == 3 else m for m in maps]
        return image.float(), [F.interpolate(m.float(), size=size, mode='bilinear', align_corners=False) for m in maps]

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        image, maps = self._forward(torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device))
        return torch.cat([image, *maps], dim=1).cpu().numpy()
