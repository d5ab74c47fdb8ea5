"""Real-ESRGAN's unsharp mask of the HR: the image its degradation starts from, and the sharpened targets.

basicsr's ``USMSharp`` clips its result to [0, 1]: right for 8-bit images, a silent clip of physical values.
Images in a physical contract get the same mask without the clip.
"""

import torch
from basicsr.utils.img_process_util import USMSharp, filter2D

USM_RADIUS = 50
"""basicsr's unsharp-mask radius; crops smaller than 2 x 50 + 1 pixels use the largest radius that fits."""


class UnclippedUSMSharp(USMSharp):
    """basicsr's unsharp mask, leaving values outside [0, 1] as they are."""

    def forward(self, img: torch.Tensor, weight: float = 0.5, threshold: float = 10) -> torch.Tensor:
        residual = img - filter2D(img, self.kernel)
        soft_mask = filter2D((residual.abs() * 255 > threshold).float(), self.kernel)
        return img + soft_mask * weight * residual


class UnsharpMask:
    """Sharpens (B, C, H, W) batches on their device; one filter per radius and device, built on first use."""

    def __init__(self, eight_bit: bool):
        self.filter_type = USMSharp if eight_bit else UnclippedUSMSharp
        self._filters: dict[tuple, USMSharp] = {}

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        radius = min(USM_RADIUS, (min(image.shape[-2:]) - 1) // 2)
        key = (radius, image.device)
        if key not in self._filters:
            self._filters[key] = self.filter_type(radius).to(image.device)
        return self._filters[key](image)
