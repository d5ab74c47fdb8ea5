"""Consistency, cPSNR, detail shares, spread and CLIP metrics against values worked out by hand on tiny arrays."""

import numpy as np
import pytest
import torch
from basicsr.utils.matlab_functions import imresize
from scipy import ndimage

from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.degradations.bicubic import bicubic_downscale
from segsr.metrics.consistency import ConsistentNetwork, lr_consistency, project_consistent, psnr
from segsr.metrics.reference import cpsnr, detail_shares
from segsr.metrics.semantic import clip_similarity, prompt, prompt_embeddings, semantic_clip, zero_shot_class
from segsr.metrics.spectral import spectral_angle_degrees
from segsr.metrics.uncertainty import spread_error_correlation
from segsr.self_ensemble import ensemble_mean_and_spread

SCALE = 4


def smooth_image(seed: int = 0, size: int = 32, sigma: float = 2) -> np.ndarray:
    """A float32 HWC image in [0.2, 0.8] with structure down to about ``sigma`` pixels."""
    noise = np.random.default_rng(seed).random((size, size, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(sigma, sigma, 0))
    return (0.2 + 0.6 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)


def test_a_perfect_output_is_consistent_and_scores_perfectly():
    hr = smooth_image()
    lr = bicubic_downscale(hr, SCALE)
    result = lr_consistency(hr, lr, SCALE, to_physical=lambda v: 1000 * v)
    assert result['psnr'] == float('inf') and result['mae'] == 0.0 and result['sam'] == pytest.approx(0, abs=1e-3)
    assert cpsnr(hr, hr) == float('inf')
    bicubic = imresize(lr, SCALE)
    shares = detail_shares(hr, hr, bicubic, tolerance=0.01)
    needs_detail = (np.abs(bicubic - hr).mean(axis=-1) > 0.01).mean()
    assert shares == {'improvement': pytest.approx(needs_detail), 'hallucination': 0.0, 'omission': 0.0}
    assert 0 < needs_detail < 1
    assert detail_shares(bicubic, hr, bicubic, tolerance=0.01) == {
        'improvement': 0.0, 'hallucination': 0.0, 'omission': pytest.approx(needs_detail)}


def test_mae_is_in_the_units_to_physical_gives():
    hr = smooth_image()
    lr = bicubic_downscale(hr, SCALE)
    brighter = hr + 0.01  # the degradation keeps a constant offset
    assert lr_consistency(brighter, lr, SCALE)['mae'] == pytest.approx(0.01, rel=1e-3)
    assert lr_consistency(brighter, lr, SCALE, to_physical=lambda v: 2000 * v - 5)['mae'] == pytest.approx(20, rel=1e-3)
    assert lr_consistency(brighter, lr, SCALE)['psnr'] == pytest.approx(40, abs=0.01)


def test_cpsnr_recovers_a_shifted_and_brighter_output_plain_psnr_does_not():
    rng = np.random.default_rng(1)
    big = smooth_image(seed=1, size=40)
    hr = big[4:36, 4:36]
    noise = 0.01 * rng.standard_normal((32, 32, 3))
    shifted = big[5:37, 4:36] + noise + 0.05  # one row down, brighter, slightly noisy
    # At dy = -1 the output window is shifted[2:28, 3:29] = hr[3:29, 3:29] + noise[2:28, 3:29] + 0.05.
    residual = noise[2:28, 3:29] - noise[2:28, 3:29].mean(axis=(0, 1))
    expected = 10 * np.log10(1 / np.mean(residual ** 2))
    assert cpsnr(shifted, hr, max_shift=3) == pytest.approx(expected, abs=1e-6)
    assert psnr(shifted, hr) < expected - 10
    assert cpsnr(shifted, hr, max_shift=0) < expected - 5  # no shift allowed: the misregistration counts


def test_fake_structure_is_counted_as_hallucination():
    hr = np.full((32, 32, 3), 0.5, dtype=np.float32)  # flat: bicubic of its LR is exact
    bicubic = imresize(bicubic_downscale(hr, SCALE), SCALE)
    np.testing.assert_allclose(bicubic, hr, atol=1e-6)
    fake = hr.copy()
    fake[8:12, 20:24] += 0.2  # a 4x4 bright square the scene does not have
    clean, faked = detail_shares(hr, hr, bicubic), detail_shares(fake, hr, bicubic)
    assert clean['hallucination'] == 0.0
    assert faked['hallucination'] == pytest.approx(16 / 32 ** 2)
    assert faked['improvement'] == 0.0 and faked['omission'] == 0.0


def test_a_bicubic_upsampling_is_nearly_consistent_a_wrong_one_is_not():
    hr = smooth_image(seed=2, size=64, sigma=6)  # detail the LR can carry
    lr = bicubic_downscale(hr, SCALE)
    bicubic = imresize(lr, SCALE)
    nearest = np.roll(lr.repeat(SCALE, 0).repeat(SCALE, 1), 3, axis=1)
    good, bad = lr_consistency(bicubic, lr, SCALE), lr_consistency(nearest, lr, SCALE)
    assert good['psnr'] > 40 and good['sam'] < 0.5
    assert bad['psnr'] < good['psnr'] - 10 and bad['mae'] > 5 * good['mae']


def test_enforced_consistency_gives_back_the_input_to_float_precision():
    hr = smooth_image(seed=3, size=24)
    lr = bicubic_downscale(hr, SCALE)
    output = hr + 0.05 * np.random.default_rng(3).standard_normal(hr.shape).astype(np.float32)
    tensor = torch.from_numpy(output.transpose(2, 0, 1))[None].double()
    lr_tensor = torch.from_numpy(lr.transpose(2, 0, 1))[None].double()
    projected = project_consistent(tensor, lr_tensor, SCALE)
    degraded = bicubic_downscale(projected[0].permute(1, 2, 0).numpy().astype(np.float32), SCALE)
    assert np.abs(bicubic_downscale(output, SCALE) - lr).max() > 1e-3
    np.testing.assert_allclose(degraded, lr, atol=1e-6)
    # A projection: applying it again changes nothing, and it moved the output towards the (consistent) HR.
    torch.testing.assert_close(project_consistent(projected, lr_tensor, SCALE), projected)
    assert np.abs(projected[0].permute(1, 2, 0).numpy() - hr).mean() < np.abs(output - hr).mean()


def test_consistent_network_wraps_any_network():
    network = ConsistentNetwork(torch.nn.Upsample(scale_factor=2, mode='nearest'), scale=2)
    lr = torch.rand(1, 3, 6, 10)
    out = network(lr)
    degraded = bicubic_downscale(out[0].permute(1, 2, 0).numpy(), 2)
    np.testing.assert_allclose(degraded, lr[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_spectral_angle_ignores_brightness_and_sees_colour():
    a = np.random.default_rng(4).random((3, 5, 6)) + 0.1
    assert spectral_angle_degrees(2.5 * a, a) == pytest.approx(0, abs=1e-5)
    red, green = np.zeros((3, 2, 2)), np.zeros((3, 2, 2))
    red[0], green[1] = 1, 1
    assert spectral_angle_degrees(red, green) == pytest.approx(90)
    mask = np.array([[True, False], [False, False]])
    mixed = red.copy()
    mixed[:, 1, 1] = green[:, 1, 1]
    assert spectral_angle_degrees(mixed, red) == pytest.approx(90 / 4)
    assert spectral_angle_degrees(mixed, red, mask) == 0


@torch.no_grad()
def test_an_equivariant_network_has_zero_spread_another_does_not():
    torch.manual_seed(0)
    equivariant = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Upsample(scale_factor=2, mode='nearest'))
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Upsample(scale_factor=2))
    x = torch.rand(1, 3, 8, 10)
    mean, spread = ensemble_mean_and_spread(equivariant, x)
    torch.testing.assert_close(mean, equivariant(x))
    assert spread.shape == mean.shape and spread.abs().max() < 1e-6
    assert ensemble_mean_and_spread(plain, x)[1].mean() > 1e-3


def test_spread_that_follows_the_error_ranks_it():
    rng = np.random.default_rng(5)
    reference = rng.random((6, 7, 3))
    output = reference + rng.normal(0, 0.1, reference.shape)
    error = np.abs(output - reference).mean(axis=-1)
    assert spread_error_correlation(error * 3 + 1, output, reference) == pytest.approx(1)
    assert spread_error_correlation(-error, output, reference) == pytest.approx(-1)
    assert np.isnan(spread_error_correlation(np.zeros((6, 7)), output, reference))


def test_clip_similarity_and_zero_shot_with_a_tiny_clip(clip_file):
    clip = semantic_clip(TINY_CLIP_MODEL, str(clip_file))
    image, other = smooth_image(seed=6), 1 - smooth_image(seed=7)
    assert clip_similarity(clip, image, image) == pytest.approx(1, abs=1e-5)
    assert clip_similarity(clip, image, other) < 1 - 1e-4
    classes = ['airplane', 'beach', 'dense_residential']
    texts = prompt_embeddings(clip, classes)
    assert texts.shape == (3, 32) and prompt('dense_residential') == 'a satellite image of dense residential.'
    predicted = zero_shot_class(clip, image, classes, texts)
    assert predicted in classes
    # Its prompt moved last, the same class still wins: the answer follows the embeddings, not the order.
    reordered = [c for c in classes if c != predicted] + [predicted]
    assert zero_shot_class(clip, image, reordered, prompt_embeddings(clip, reordered)) == predicted
