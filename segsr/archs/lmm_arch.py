"""LMM: SPADE-style modulation of SR features by a guidance map."""

import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.nn.guidance import ChannelLayerNorm
from segsr.utils.errors import SegSRError

NORMS = ('layer', 'none')


@ARCH_REGISTRY.register()
class LMM(nn.Module):
    """``norm(x) * (1 + gamma(M)) + beta(M)``, gamma and beta from 3x3 convs on a shared hidden layer.

    ``zero_init`` zeroes the gamma and beta convs, so with ``norm: none`` the module starts as the
    identity and a guided network starts exactly as its backbone.
    """

    def __init__(self, num_feat: int, map_channels: int = 1, hidden: int = 128, norm: str = 'layer',
                 zero_init: bool = False):
        super().__init__()
        if norm not in NORMS:
            raise SegSRError(f"lmm.norm is '{norm}'; use one of {list(NORMS)}")
        self.norm = ChannelLayerNorm(num_feat) if norm == 'layer' else nn.Identity()
        self.shared = nn.Sequential(nn.Conv2d(map_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, num_feat, 3, padding=1)
        self.beta = nn.Conv2d(hidden, num_feat, 3, padding=1)
        if zero_init:
            for conv in (self.gamma, self.beta):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        hidden = self.shared(guidance)
        return self.norm(x) * (1 + self.gamma(hidden)) + self.beta(hidden)
