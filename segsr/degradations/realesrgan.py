"""Real-ESRGAN's high-order degradation on the tensors' device, from basicsr's kernels, filters, noise and JPEG.

The order of operations and the option keys are Real-ESRGAN's (see :mod:`segsr.options.degradation`). Two
departures, both for physical values: 8-bit images (the default radiometric contract) are clamped to [0, 1] and
rounded to 8-bit levels as Real-ESRGAN does; images in a physical contract are never clamped or rounded (the
unsharp mask included), and JPEG and grey noise (3-band RGB only) are refused for any other band count.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from basicsr.data.degradations import (
    circular_lowpass_kernel,
    random_add_gaussian_noise_pt,
    random_add_poisson_noise_pt,
    random_mixed_kernels,
)
from basicsr.utils import DiffJPEG
from basicsr.utils.img_process_util import filter2D

from segsr.degradations.random_state import DegradationRNG
from segsr.degradations.sharpen import UnsharpMask
from segsr.utils.errors import SegSRError

RESIZE_MODES = ('area', 'bilinear', 'bicubic')


def odd_sizes(largest: int) -> list[int]:
    return list(range(7, largest + 1, 2))


def draw_blur_kernel(settings: dict, suffix: str) -> np.ndarray:
    """One first- (``suffix`` '') or second-stage ('2') kernel, padded to ``blur_kernel_size``; global numpy draws."""
    largest = settings[f'blur_kernel_size{suffix}']
    size = int(np.random.choice(odd_sizes(largest)))
    if np.random.uniform() < settings[f'sinc_prob{suffix}']:
        cutoff = np.random.uniform(np.pi / 3, np.pi) if size < 13 else np.random.uniform(np.pi / 5, np.pi)
        kernel = circular_lowpass_kernel(cutoff, size, pad_to=False)
    else:
        sigma = settings[f'blur_sigma{suffix}']
        kernel = random_mixed_kernels(settings[f'kernel_list{suffix}'], settings[f'kernel_prob{suffix}'], size, sigma,
                                      sigma, [-math.pi, math.pi], settings[f'betag_range{suffix}'],
                                      settings[f'betap_range{suffix}'], noise_range=None)
    pad = (largest - size) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad)))


def draw_sinc_kernel(settings: dict) -> np.ndarray:
    """The final sinc filter, or an identity pulse, of ``blur_kernel_size``."""
    largest = settings['blur_kernel_size']
    if np.random.uniform() < settings['final_sinc_prob']:
        size = int(np.random.choice(odd_sizes(largest)))
        return circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size, pad_to=largest)
    pulse = np.zeros((largest, largest))
    pulse[largest // 2, largest // 2] = 1
    return pulse


class RealESRGANDegradation:
    """HR (B, C, H, W) -> LR at ``scale``; ``eight_bit`` images are clamped and rounded as Real-ESRGAN does."""

    def __init__(self, settings: dict, scale: int, eight_bit: bool):
        self.settings, self.scale, self.eight_bit = settings, int(scale), eight_bit
        self._jpeg: DiffJPEG | None = None
        self.sharpen = UnsharpMask(eight_bit)

    def draw_kernels(self, batch: int, rng: DegradationRNG) -> dict:
        """``kernel1``, ``kernel2`` and ``sinc_kernel`` (B, k, k) on the RNG's device, as RealESRGANDataset gives."""
        with rng.as_global():
            drawn = [[draw_blur_kernel(self.settings, ''), draw_blur_kernel(self.settings, '2'),
                      draw_sinc_kernel(self.settings)] for _ in range(batch)]
        return {name: torch.from_numpy(np.stack([item[i] for item in drawn])).float().to(rng.device)
                for i, name in enumerate(('kernel1', 'kernel2', 'sinc_kernel'))}

    def _check_bands(self, bands: int) -> None:
        if bands == 3:
            return
        if self.settings['jpeg_range'] is not None or self.settings['jpeg_range2'] is not None:
            raise SegSRError(f'realesrgan: JPEG compresses 3-band RGB only, these images have {bands} bands; set '
                             'jpeg_range: ~ and jpeg_range2: ~')
        if self.settings['gray_noise_prob'] or self.settings['gray_noise_prob2']:
            raise SegSRError(f'realesrgan: grey noise needs 3-band RGB, these images have {bands} bands; set '
                             'gray_noise_prob: 0 and gray_noise_prob2: 0')

    def _resize(self, image: torch.Tensor, suffix: str, size: tuple[int, int] | None) -> torch.Tensor:
        low, high = self.settings[f'resize_range{suffix}']
        kind = np.random.choice(3, p=self.settings[f'resize_prob{suffix}'])  # up, down, keep
        factor = np.random.uniform(1, high) if kind == 0 else np.random.uniform(low, 1) if kind == 1 else 1.0
        mode = RESIZE_MODES[np.random.randint(len(RESIZE_MODES))]
        if size is None:
            return F.interpolate(image, scale_factor=factor, mode=mode)
        return F.interpolate(image, size=(int(size[0] * factor), int(size[1] * factor)), mode=mode)

    def _noise(self, image: torch.Tensor, suffix: str) -> torch.Tensor:
        gray = self.settings[f'gray_noise_prob{suffix}']
        if np.random.uniform() < self.settings[f'gaussian_noise_prob{suffix}']:
            return random_add_gaussian_noise_pt(image, sigma_range=self.settings[f'noise_range{suffix}'],
                                                clip=self.eight_bit, rounds=False, gray_prob=gray)
        return random_add_poisson_noise_pt(image, scale_range=self.settings[f'poisson_scale_range{suffix}'],
                                           gray_prob=gray, clip=self.eight_bit, rounds=False)

    def _jpeg_compress(self, image: torch.Tensor, suffix: str) -> torch.Tensor:
        quality_range = self.settings[f'jpeg_range{suffix}']
        if quality_range is None:
            return image
        if self._jpeg is None:
            self._jpeg = DiffJPEG(differentiable=False).to(image.device)
        quality = image.new_zeros(image.shape[0]).uniform_(*quality_range)
        return self._jpeg(image.clamp(0, 1), quality=quality).contiguous()  # JPEG is defined on [0, 1] only

    def _back_and_sinc(self, image: torch.Tensor, size: tuple[int, int], sinc: torch.Tensor) -> torch.Tensor:
        mode = RESIZE_MODES[np.random.randint(len(RESIZE_MODES))]
        return filter2D(F.interpolate(image, size=size, mode=mode), sinc)

    def __call__(self, gt: torch.Tensor, rng: DegradationRNG, kernels: dict | None = None) -> tuple:
        """``(lq, target, stages)``: the LR, the training target (unsharp-masked HR when ``gt_usm``) and the
        named intermediate images."""
        self._check_bands(gt.shape[1])
        kernels = kernels or self.draw_kernels(gt.shape[0], rng)
        height, width = gt.shape[-2:]
        lr_size = (height // self.scale, width // self.scale)
        stages = {}
        with rng.as_global():
            sharpened = self.sharpen(gt)
            out = stages['blur1'] = filter2D(sharpened, kernels['kernel1'])
            out = stages['resize1'] = self._resize(out, '', None)
            out = stages['noise1'] = self._noise(out, '')
            out = stages['jpeg1'] = self._jpeg_compress(out, '')
            if np.random.uniform() < self.settings['second_blur_prob']:
                out = stages['blur2'] = filter2D(out, kernels['kernel2'])
            out = stages['resize2'] = self._resize(out, '2', lr_size)
            out = stages['noise2'] = self._noise(out, '2')
            if np.random.uniform() < 0.5:
                out = stages['sinc'] = self._back_and_sinc(out, lr_size, kernels['sinc_kernel'])
                out = stages['jpeg2'] = self._jpeg_compress(out, '2')
            else:
                out = stages['jpeg2'] = self._jpeg_compress(out, '2')
                out = stages['sinc'] = self._back_and_sinc(out, lr_size, kernels['sinc_kernel'])
        if self.eight_bit:
            out = torch.clamp((out * 255.0).round(), 0, 255) / 255.0
        target = sharpened if self.settings['gt_usm'] else gt
        return out, target, stages
