"""Running a network on batches of numpy tiles: device placement, bf16 autocast, guidance maps."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segsr.nn.info import describe
from segsr.self_ensemble import ensemble_mean_and_spread
from segsr.utils.errors import SegSRError


def resolve_device(name: str | None) -> torch.device:
    """CUDA when present unless told otherwise; asking for CUDA without it is a user error."""
    if name is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise SegSRError(f'--device {name} asked for but CUDA is not available: use --device cpu')
    try:
        return torch.device(name)
    except RuntimeError:
        raise SegSRError(f'unknown --device {name!r}: use cpu, cuda or cuda:N') from None


class TileUpscaler:
    """``(B, C, h, w)`` float32 array -> ``(B, C_sr + C_maps, h*s, w*s)`` float32 array.

    With ``guidance`` the network's maps are resized bilinearly to the output size and appended
    as extra channels, so they are tiled and blended exactly like the image. With ``uncertainty``
    the output is the x8 self-ensemble mean, followed by its spread (the per-pixel standard
    deviation of the 8 outputs) in ``C_sr`` more channels.
    """

    def __init__(self, network: nn.Module, device: torch.device, bf16: bool, guidance: bool,
                 uncertainty: bool = False, card: dict | None = None):
        self.network = network.to(device)
        self.card = card  # the model card of the weights: what an input must look like
        info = describe(self.network)
        if guidance and not info.map_channels:
            name = type(network).__name__
            raise SegSRError(f'{name} produces no guidance maps: drop --save-guidance or use a SEGSR checkpoint')
        self.in_channels = info.in_chans
        self.scale = info.scale
        self.sr_channels = info.out_chans
        self.map_channels = info.map_channels if guidance else 0
        self.map_stages = list(info.map_stages) if guidance else []
        self.spread_channels = self.sr_channels if uncertainty else 0
        self.device = device
        self.bf16 = bf16
        self.guidance = guidance

    @torch.inference_mode()
    def _forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.spread_channels:
                image, spread = ensemble_mean_and_spread(self.network, inputs)
                return image.float(), [spread.float()]
            if not self.guidance:
                return self.network(inputs).float(), []
            image, maps = self.network(inputs, return_maps=True)
        return image.float(), [self._map_to_output(m, inputs.shape[-2:], image.shape[-2:]) for m in maps]

    @staticmethod
    def _map_to_output(guidance: torch.Tensor, input_size: torch.Size, output_size: torch.Size) -> torch.Tensor:
        """A map on the (possibly padded) input grid, cropped to the input and resized to the output."""
        guidance = guidance.unsqueeze(1) if guidance.ndim == 3 else guidance
        if guidance.shape[-2] >= input_size[0] and guidance.shape[-1] >= input_size[1]:
            guidance = guidance[..., : input_size[0], : input_size[1]]
        return F.interpolate(guidance.float(), size=output_size, mode='bilinear', align_corners=False)

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        image, maps = self._forward(torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device))
        return torch.cat([image, *maps], dim=1).cpu().numpy()
