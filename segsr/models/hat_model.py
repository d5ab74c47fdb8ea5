"""The model types of the published HAT and SeG-SR option files, so those files run unchanged."""

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from segsr.models.sr_model import SegSRModel
from segsr.nn.padding import pad_to_multiple


def window_size(network_opt: dict) -> int:
    """``network_g.window_size``, flat (HAT, published SEGSR) or under ``backbone``; 1 for a network without one."""
    backbone = network_opt.get('backbone')
    nested = backbone.get('window_size') if isinstance(backbone, dict) else None
    return int(network_opt.get('window_size') or nested or 1)


@MODEL_REGISTRY.register()
class HATModel(SegSRModel):
    """``model_type: HATModel``: segsr's SR model with HAT's test-time padding.

    As published, the LR image is reflect-padded to a multiple of ``network_g.window_size`` before the
    network (tile by tile when ``tile`` is set) and the output cropped back. segsr's HAT and SEGSR pad
    the same way themselves, so for them this changes nothing; it matters for networks that do not.
    """

    def run_network(self, net: torch.nn.Module, lq: torch.Tensor) -> torch.Tensor:
        height, width = lq.shape[-2:]
        scale = self.opt['scale']
        output = super().run_network(net, pad_to_multiple(lq, window_size(self.opt['network_g'])))
        return output[..., :height * scale, :width * scale]


@MODEL_REGISTRY.register()
class SEGSRModel(HATModel):
    """``model_type: SEGSRModel`` of the published SeG-SR files: the published class validates like HATModel."""
