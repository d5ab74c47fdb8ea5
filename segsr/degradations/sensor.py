"""A remote-sensing sensor, band by band, in the physical units of the radiometric contract.

HR -> LR as a sensor makes it: the system PSF (a Gaussian whose MTF at the LR Nyquist frequency is the value the
user states per band) with the band's sub-pixel misregistration folded into the PSF's centre, sampled on the LR
grid; then signal-dependent noise (shot + read) from an SNR at a reference level, and quantisation to the
sensor's bit depth, the contract's physical range being its full scale. Nothing is clipped.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from segsr.degradations.random_state import DegradationRNG
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

PSF_RADIUS_SIGMAS = 4.0
BISECTION_STEPS = 40


def sigma_for_mtf(mtf: np.ndarray | float, scale: int) -> np.ndarray:
    """The Gaussian PSF's sigma in HR pixels whose MTF, exp(-2 pi^2 sigma^2 f^2), is ``mtf`` at the LR Nyquist
    frequency f = 0.5 cycles per LR pixel = 0.5 / scale cycles per HR pixel."""
    frequency = 0.5 / scale
    return np.sqrt(-np.log(np.asarray(mtf, dtype=np.float64)) / (2 * math.pi**2 * frequency**2))


def per_band_pairs(value: object, bands: int, name: str) -> np.ndarray:
    """``(bands, 2)`` [low, high] ranges from one number, one [low, high] pair in a list, or one entry per band
    (each a number or a pair); a number is a range of one value."""
    entries = value if isinstance(value, list | tuple) else [value]
    if len(entries) not in (1, bands):
        raise SegSRError(f'sensor.{name}: {len(entries)} values for {bands} bands; give one, or one per band')
    pairs = [(float(entry[0]), float(entry[1])) if isinstance(entry, list | tuple) else (float(entry),) * 2
             for entry in entries]
    return np.broadcast_to(np.asarray(pairs), (bands, 2)).copy()


def per_band_values(value: object, bands: int, name: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.size not in (1, bands):
        raise SegSRError(f'sensor.{name}: {values.size} values for {bands} bands; give one, or one per band')
    return np.broadcast_to(values, bands).copy()


@dataclass(frozen=True)
class SensorModel:
    """Per-band settings: ``mtf`` ranges (bands, 2), ``snr`` and ``reference`` (physical) or None for no noise,
    the share of the noise variance at the reference level that is read noise, fixed ``shift`` (bands, 2) in LR
    pixels (x, y) plus a uniform random one up to ``shift_range``, and ``bits`` (None: no quantisation)."""

    mtf: np.ndarray
    snr: np.ndarray | None
    reference: np.ndarray | None
    read_fraction: float
    shift: np.ndarray
    shift_range: float
    bits: int | None

    @classmethod
    def from_options(cls, opt: dict, bands: int) -> 'SensorModel':
        noisy = opt.get('snr') is not None
        if noisy and opt.get('reference') is None:
            raise SegSRError('sensor.reference: missing; give the physical level (per band) at which snr holds')
        shift = opt.get('shift')
        shift = np.zeros((bands, 2)) if shift is None else per_band_pairs(shift, bands, 'shift')
        return cls(per_band_pairs(opt['mtf'], bands, 'mtf'),
                   per_band_values(opt['snr'], bands, 'snr') if noisy else None,
                   per_band_values(opt['reference'], bands, 'reference') if noisy else None,
                   float(opt.get('read_fraction', 0.5)), shift, float(opt.get('shift_range', 0.0)),
                   opt.get('bits'))

    def noise_sigma(self, physical: torch.Tensor) -> torch.Tensor:
        """The noise standard deviation (physical units) at each value of ``(B, C, h, w)`` physical values:
        variance = (reference / snr)^2 * (read_fraction + (1 - read_fraction) * signal / reference)."""
        shape = (1, -1, 1, 1)
        reference = torch.as_tensor(self.reference, dtype=physical.dtype, device=physical.device).view(shape)
        at_reference = reference / torch.as_tensor(self.snr, dtype=physical.dtype, device=physical.device).view(shape)
        signal_share = physical.clamp(min=0) / reference  # shot noise grows with the (non-negative) signal
        return at_reference * torch.sqrt(self.read_fraction + (1 - self.read_fraction) * signal_share)


def gaussian_profiles(sigmas: torch.Tensor, centres: torch.Tensor, radius: int) -> torch.Tensor:
    """``(N, k)`` sampled, normalised 1-D Gaussians of ``sigmas`` (N,) centred ``centres`` (N,) taps off the middle."""
    taps = torch.arange(-radius, radius + 1, dtype=sigmas.dtype, device=sigmas.device)
    profiles = torch.exp(-(taps[None] - centres[:, None]) ** 2 / (2 * sigmas[:, None] ** 2))
    return profiles / profiles.sum(dim=1, keepdim=True)


def sampled_sigmas(mtf: torch.Tensor, centres: torch.Tensor, scale: int, radius: int) -> torch.Tensor:
    """The sigmas whose SAMPLED profiles have the MTF ``mtf`` at the LR Nyquist frequency: a Gaussian sampled on a
    pixel grid is not the continuous one (its spectrum aliases), which a few percent shows at sigmas below one
    pixel; bisection on the sampled profile's spectrum from the continuous formula's sigma."""
    frequency = 0.5 / scale
    taps = torch.arange(-radius, radius + 1, dtype=mtf.dtype, device=mtf.device)
    phase = torch.exp(-2j * math.pi * frequency * taps.to(torch.complex128))
    low, high = torch.full_like(mtf, 0.05), torch.full_like(mtf, float(radius) / PSF_RADIUS_SIGMAS)
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        response = (gaussian_profiles(middle, centres, radius).to(torch.complex128) * phase).sum(dim=1).abs()
        too_sharp = response > mtf  # the MTF falls as sigma grows
        low, high = torch.where(too_sharp, middle, low), torch.where(too_sharp, high, middle)
    return (low + high) / 2


def depthwise(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image's band filtered by its own kernel: ``images`` (B, C, H, W), ``kernels`` (B, C, k, k)."""
    batch, bands, height, width = images.shape
    radius = kernels.shape[-1] // 2
    mode = 'reflect' if radius < min(height, width) else 'replicate'
    padded = F.pad(images.reshape(1, batch * bands, height, width), [radius] * 4, mode=mode)
    out = F.conv2d(padded, kernels.reshape(batch * bands, 1, *kernels.shape[-2:]).to(images.dtype),
                   groups=batch * bands)
    return out.reshape(batch, bands, height, width)


class SensorDegradation:
    """HR (B, C, H, W) network values -> LR through :class:`SensorModel` at ``scale``; stages kept for a picture."""

    def __init__(self, opt: dict, scale: int, contract: Radiometry):
        self.opt, self.scale, self.contract = dict(opt), int(scale), contract

    def model(self, bands: int) -> SensorModel:
        return SensorModel.from_options(self.opt, bands)

    def blur(self, hr: torch.Tensor, rng: DegradationRNG, model: SensorModel) -> torch.Tensor:
        """The PSF on the HR grid, centred so that pixel ``i * scale`` of the result holds LR pixel i's centre
        shifted by the band's misregistration."""
        batch, bands = hr.shape[:2]
        generator, device = rng.torch, rng.device
        low, high = (torch.as_tensor(model.mtf[:, side], dtype=torch.float64, device=device) for side in (0, 1))
        mtf = low + (high - low) * torch.rand(batch, bands, generator=generator, device=device, dtype=torch.float64)
        shift = torch.as_tensor(model.shift, dtype=torch.float64, device=device).expand(batch, bands, 2)
        if model.shift_range > 0:
            draws = torch.rand(batch, bands, 2, generator=generator, device=device, dtype=torch.float64)
            shift = shift + (2 * draws - 1) * model.shift_range
        # sampling at centre - shift moves the band's content by +shift LR pixels
        centres = ((self.scale - 1) / 2 - shift * self.scale).reshape(-1, 2)
        widest = float(sigma_for_mtf(float(mtf.min()), self.scale))
        radius = math.ceil(PSF_RADIUS_SIGMAS * (widest + 1) + float(centres.abs().max()))
        targets = mtf.reshape(-1, 1).expand(-1, 2).reshape(-1)
        sigmas = sampled_sigmas(targets, centres.reshape(-1), self.scale, radius)
        profiles = gaussian_profiles(sigmas, centres.reshape(-1), radius).reshape(batch * bands, 2, -1)
        kernels = (profiles[:, 1, :, None] * profiles[:, 0, None, :]).reshape(batch, bands, 2 * radius + 1, -1)
        return depthwise(hr, kernels)

    def add_noise(self, lr: torch.Tensor, lr_valid: torch.Tensor | None, rng: DegradationRNG,
                  model: SensorModel) -> torch.Tensor:
        """Shot + read noise where the LR pixel holds data (nodata carries no signal)."""
        bands = lr.shape[1]
        span = torch.as_tensor(self.contract.span(bands), dtype=lr.dtype, device=lr.device).view(1, -1, 1, 1)
        low = torch.as_tensor(np.broadcast_to(self.contract.low, bands).copy(), dtype=lr.dtype,
                              device=lr.device).view(1, -1, 1, 1)
        sigma = model.noise_sigma(lr * span + low) / span
        noise = torch.randn(lr.shape, generator=rng.torch, device=rng.device, dtype=lr.dtype) * sigma
        return lr + (noise if lr_valid is None else noise * lr_valid)

    def __call__(self, hr: torch.Tensor, rng: DegradationRNG, valid: torch.Tensor | None = None) -> tuple:
        """``(lr, stages)``: the LR in network values and the named intermediate images (HR or LR grid)."""
        model = self.model(hr.shape[1])
        blurred = self.blur(hr, rng, model)
        lr = blurred[..., ::self.scale, ::self.scale]
        stages = {'psf': blurred, 'sampled': lr}
        lr_valid = None
        if valid is not None and not bool(valid.all()):
            lr_valid = (F.avg_pool2d(valid.to(lr.dtype), self.scale) > 0).to(lr.dtype)
        if model.snr is not None:
            lr = stages['noise'] = self.add_noise(lr, lr_valid, rng, model)
        if model.bits:
            levels = 2 ** int(model.bits) - 1
            lr = stages['quantised'] = torch.round(lr * levels) / levels
        return lr, stages
