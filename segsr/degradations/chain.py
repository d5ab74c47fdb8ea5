"""The training degradation a dataset states, applied to whole batches on the model's device.

``datasets.train.degradation`` names one degradation or a list: the first makes LR at the option file's scale,
each later one degrades that LR further at scale 1 (e.g. ``[bicubic, sensor]``: bicubic LR, then the sensor's
PSF, noise and quantisation on the LR grid). The chain owns its random state and Real-ESRGAN's training-pair
pool; both are part of the training state.
"""

import torch

from segsr.degradations.bicubic_torch import bicubic_batch
from segsr.degradations.pool import TrainingPairPool
from segsr.degradations.random_state import DegradationRNG
from segsr.degradations.realesrgan import RealESRGANDegradation
from segsr.degradations.sensor import SensorDegradation
from segsr.options.degradation import DEGRADATION_NAMES, degradation_names, realesrgan_settings
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel')


class DegradationChain:
    """HR batches -> (LR, target, mask) through the named degradations."""

    def __init__(self, opt: dict, dataset: dict, device: torch.device, seed: int = 0):
        self.names = degradation_names(dataset)
        self.scale = int(opt['scale'])
        contract = Radiometry.of_options(opt)
        settings = realesrgan_settings(opt, dataset)
        self.steps = []
        for position, name in enumerate(self.names):
            scale = self.scale if position == 0 else 1
            if name == 'realesrgan':
                self.steps.append((name, RealESRGANDegradation(settings, scale, contract.is_default)))
            elif name == 'sensor':
                self.steps.append((name, SensorDegradation(dataset.get('sensor') or {}, scale, contract)))
            elif name == 'bicubic':
                self.steps.append((name, scale))
            else:
                raise SegSRError(f'datasets.train.degradation: {name!r} has no step in the degradation chain; use one '
                                 f'of {", ".join(DEGRADATION_NAMES)}')
        self.gt_size = dataset.get('gt_size') or opt.get('gt_size')
        self.rng = DegradationRNG(seed, device)
        queue = settings['queue_size'] if 'realesrgan' in self.names else 0
        self.pool = TrainingPairPool(queue, self.rng) if queue else None

    def degrade(self, gt: torch.Tensor, mask: torch.Tensor | None = None, kernels: dict | None = None) -> tuple:
        """``(lq, target, mask)`` for a batch of HR ``gt`` (B, C, H, W) in network values."""
        image, target, _ = self.degrade_whole(gt, mask, kernels)
        target, image, mask = self._crop(target, image, mask)
        if self.pool is not None:
            image, target, mask = self.pool.exchange(image, target, mask)
        return image, target, mask

    def degrade_whole(self, gt: torch.Tensor, mask: torch.Tensor | None = None, kernels: dict | None = None) -> tuple:
        """``(lq, target, stages)`` of whole images, without the training crop and pair pool: each image's own
        degradation, for pictures of the stages and for held-out LR sets."""
        image, target, stages = gt, gt, {'hr': gt}
        for position, (name, step) in enumerate(self.steps):
            if name == 'realesrgan':
                image, made_target, named = step(image, self.rng, kernels if position == 0 else None)
                target = made_target if position == 0 else target
            elif name == 'sensor':
                valid = mask if position == 0 else None
                image, named = step(image, self.rng, valid)
            else:
                image, named = bicubic_batch(image, step), {}
            stages |= {f'{position + 1}_{name}_{key}': value for key, value in named.items()}
        stages['lr'] = image
        return image, target, stages

    def _crop(self, target: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None) -> tuple:
        """A ``gt_size`` crop on the LR grid where the HR is larger (RealESRGANDataset gives 400-pixel crops)."""
        size = self.gt_size
        height, width = target.shape[-2:]
        if not size or (height <= size and width <= size):
            return target, image, mask
        lr_size, scale = size // self.scale, self.scale
        top = int(self.rng.numpy.randint(0, height // scale - lr_size + 1))
        left = int(self.rng.numpy.randint(0, width // scale - lr_size + 1))
        image = image[..., top:top + lr_size, left:left + lr_size]
        rows, cols = slice(top * scale, top * scale + size), slice(left * scale, left * scale + size)
        return target[..., rows, cols], image, None if mask is None else mask[..., rows, cols]

    def degrade_batch(self, data: dict, device: torch.device) -> dict:
        """The loader's batch with ``lq`` made (and ``gt``/``mask`` replaced by the target and pool's pairs)."""
        kernels = {key: data[key].to(device) for key in KERNEL_KEYS} if 'kernel1' in data else None
        mask = data['mask'].to(device) if 'mask' in data else None
        lq, gt, mask = self.degrade(data['gt'].to(device), mask, kernels)
        batch = {key: value for key, value in data.items() if key not in KERNEL_KEYS}
        batch |= {'lq': lq, 'gt': gt, **({'mask': mask} if mask is not None else {})}
        return batch

    def state_dict(self) -> dict:
        return {'rng': self.rng.state_dict(), **({'pool': self.pool.state_dict()} if self.pool else {})}

    def load_state_dict(self, state: dict) -> None:
        self.rng.load_state_dict(state['rng'])
        if self.pool is not None and 'pool' in state:
            self.pool.load_state_dict(state['pool'])


def training_degradation(opt: dict, device: torch.device) -> DegradationChain | None:
    """The chain of the training dataset, or None for plain bicubic (which the dataset makes itself, unchanged)."""
    dataset = (opt.get('datasets') or {}).get('train') or {}
    if degradation_names(dataset) == ['bicubic']:
        return None
    seed = int(opt.get('manual_seed') or 0) + int(opt.get('rank', 0))
    return DegradationChain(opt, dataset, device, seed)

