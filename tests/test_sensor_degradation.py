"""The sensor model measured: MTF at LR Nyquist, noise from the SNR, misregistration, quantisation, nodata."""

import numpy as np
import pytest
import torch

from segsr.degradations.random_state import DegradationRNG
from segsr.degradations.sensor import SensorDegradation
from segsr.radiometry.contract import Radiometry

BANDS = [1, 2, 3, 4]
CONTRACT = Radiometry.from_options({'scale': 1e-4, 'offset': 0.0, 'range': [0.0, 0.5]}, BANDS)
MTF = [0.22, 0.3, 0.41, 0.55]  # Sentinel-2-like spread of per-band MTFs at Nyquist


def measured_mtf(sensor: SensorDegradation, size: int) -> np.ndarray:
    """(bands, 2): the applied PSF's MTF at the LR Nyquist frequency along x and y, from the spectrum of the
    blurred image of a point source on the HR grid (the ratio of the Nyquist bin to the zero-frequency bin)."""
    point = torch.zeros(1, len(BANDS), size, size, dtype=torch.float64)
    point[..., size // 2, size // 2] = 1
    _, stages = sensor(point, DegradationRNG(0, 'cpu'))
    spectrum = np.abs(np.fft.fft2(stages['psf'][0].numpy()))
    nyquist = size // (2 * sensor.scale)  # bin of 0.5 cycles per LR pixel
    return np.stack([spectrum[:, 0, nyquist], spectrum[:, nyquist, 0]], axis=1) / spectrum[:, :1, 0]


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_psf_mtf_at_lr_nyquist_is_the_stated_value_per_band(scale):
    measured = measured_mtf(SensorDegradation({'mtf': MTF}, scale, CONTRACT), 24 * scale)
    error = np.abs(measured / np.array(MTF)[:, None] - 1)
    print(f'x{scale} MTF at Nyquist stated {MTF} measured x {measured[:, 0].round(4).tolist()} '
          f'y {measured[:, 1].round(4).tolist()}; largest relative error {error.max():.2e}')
    assert error.max() < 0.02


def test_mtf_drawn_from_a_range_stays_inside_it():
    sensor = SensorDegradation({'mtf': [[0.2, 0.4]]}, 2, CONTRACT)
    draws = np.stack([measured_mtf(sensor, 48) for _ in range(2)])  # each call draws anew with seed 0's stream
    assert np.all(draws > 0.2 * 0.98) and np.all(draws < 0.4 * 1.02)
    assert draws[0, :, 0].std() > 0.01, 'bands draw their own MTF'


@pytest.mark.parametrize('level_share', [1.0, 0.25])
def test_noise_std_follows_the_snr_per_band(level_share):
    snr, reference, read_fraction = np.array([40.0, 80.0, 120.0, 200.0]), np.array([0.1, 0.15, 0.2, 0.3]), 0.3
    sensor = SensorDegradation({'mtf': 0.3, 'snr': snr.tolist(), 'reference': reference.tolist(),
                                'read_fraction': read_fraction}, 2, CONTRACT)
    span = CONTRACT.span(4)
    level = reference * level_share
    flat = torch.from_numpy(np.broadcast_to((level / span)[None, :, None, None], (1, 4, 256, 256)).copy())
    lr, _ = sensor(flat, DegradationRNG(1, 'cpu'))
    measured = lr[0].numpy().reshape(4, -1).std(axis=1) * span  # physical units
    expected = reference / snr * np.sqrt(read_fraction + (1 - read_fraction) * level_share)
    print(f'flat field at {level_share:g} x reference: noise std expected {expected.round(6).tolist()} '
          f'measured {measured.round(6).tolist()}')
    assert np.all(np.abs(measured / expected - 1) < 0.05)


def phase_shift(moved: np.ndarray, still: np.ndarray) -> tuple[float, float]:
    """The sub-pixel (x, y) shift of ``moved`` against ``still`` from the phase slope of their cross-spectrum at
    the lowest frequencies (both periodic-smooth test patterns)."""
    cross = np.fft.fft2(moved) * np.conj(np.fft.fft2(still))
    size = moved.shape[0]
    return (-np.angle(cross[0, 1]) * size / (2 * np.pi), -np.angle(cross[1, 0]) * size / (2 * np.pi))


def test_band_misregistration_moves_each_band_by_its_shift():
    size, scale = 96, 2
    y, x = np.mgrid[:size, :size] / size
    pattern = 0.25 + 0.1 * np.cos(2 * np.pi * x) + 0.1 * np.cos(2 * np.pi * y)  # mirror-symmetric at the edges
    hr = torch.from_numpy(np.broadcast_to(pattern, (1, 4, size, size)).copy())
    shifts = [[0.0, 0.0], [0.3, -0.2], [-0.45, 0.1], [0.25, 0.25]]
    moved, _ = SensorDegradation({'mtf': 0.3, 'shift': shifts}, scale, CONTRACT)(hr, DegradationRNG(0, 'cpu'))
    still, _ = SensorDegradation({'mtf': 0.3}, scale, CONTRACT)(hr, DegradationRNG(0, 'cpu'))
    measured = [phase_shift(moved[0, band].numpy(), still[0, band].numpy()) for band in range(4)]
    print(f'misregistration stated {shifts} measured {np.round(measured, 3).tolist()} (LR pixels)')
    assert np.allclose(measured, shifts, atol=0.02)


def test_quantisation_to_the_bit_depth_without_clipping():
    hr = torch.linspace(-0.2, 1.3, 4 * 32 * 32, dtype=torch.float64).reshape(1, 4, 32, 32)
    lr, _ = SensorDegradation({'mtf': 0.3, 'bits': 6}, 2, CONTRACT)(hr, DegradationRNG(0, 'cpu'))
    levels = lr.numpy() * 63
    assert np.allclose(levels, np.round(levels), atol=1e-9)
    assert lr.min() < 0 and lr.max() > 1, 'values beyond the full scale are kept, not clipped'


def test_nodata_pixels_get_no_noise():
    hr = torch.full((1, 4, 32, 32), 0.4, dtype=torch.float64)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., :16, :16] = 0
    sensor = SensorDegradation({'mtf': 0.3, 'snr': 50, 'reference': 0.2}, 2, CONTRACT)
    lr, _ = sensor(hr, DegradationRNG(0, 'cpu'), valid)
    assert torch.allclose(lr[..., :8, :8], torch.tensor(0.4, dtype=torch.float64))
    assert lr[..., 8:, 8:].std() > 0


def test_random_state_saved_and_restored_gives_the_same_draws():
    sensor = SensorDegradation({'mtf': [[0.2, 0.4]], 'snr': 50, 'reference': 0.2, 'shift_range': 0.3}, 2, CONTRACT)
    hr = torch.rand(2, 4, 32, 32, dtype=torch.float64)
    rng = DegradationRNG(3, 'cpu')
    sensor(hr, rng)
    saved = rng.state_dict()
    first, _ = sensor(hr, rng)
    again = DegradationRNG(99, 'cpu')
    again.load_state_dict(saved)
    assert torch.equal(sensor(hr, again)[0], first)
    assert not torch.equal(sensor(hr, rng)[0], first)
