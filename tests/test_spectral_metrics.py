"""Per-band PSNR and SSIM, SAM and ERGAS on physical values, against independent computations."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from segsr.metrics.spectral import band_psnr, band_ssim, ergas, spectral_angle_degrees
from segsr.utils.errors import SegSRError


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.05, 0.5, (4, 24, 24))
    return reference + rng.normal(0, 0.01, reference.shape), reference


def test_band_psnr_and_ssim_match_scikit_image_per_band(pair):
    output, reference = pair
    ranges = np.array([0.6, 0.6, 1.0, 0.3])
    psnr, ssim = band_psnr(output, reference, ranges), band_ssim(output, reference, ranges)
    for band, peak in enumerate(ranges):
        assert psnr[band] == pytest.approx(peak_signal_noise_ratio(reference[band], output[band], data_range=peak))
        assert ssim[band] == pytest.approx(structural_similarity(
            output[band], reference[band], data_range=peak, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False))


def test_sam_is_the_angle_between_spectra_in_degrees():
    reference = np.zeros((2, 1, 2))
    reference[0] = 1.0
    output = reference.copy()
    output[:, 0, 1] = [1.0, 1.0]  # 45 degrees off at the second pixel
    assert spectral_angle_degrees(output, reference) == pytest.approx(22.5)
    assert spectral_angle_degrees(output * 7.0, reference) == pytest.approx(22.5), 'brightness does not count'
    assert spectral_angle_degrees(output, reference, mask=np.array([[True, False]])) == pytest.approx(0.0)


def test_ergas_follows_its_definition(pair):
    output, reference = pair
    terms = [np.mean((output[b] - reference[b]) ** 2) / reference[b].mean() ** 2 for b in range(4)]
    assert ergas(output, reference, scale=4) == pytest.approx(100 / 4 * np.sqrt(np.mean(terms)))


def test_masked_pixels_count_nowhere(pair):
    output, reference = pair
    spoiled = output.copy()
    spoiled[:, :6] = 100.0
    mask = np.ones(reference.shape[1:], bool)
    mask[:6] = False
    np.testing.assert_allclose(band_psnr(spoiled, reference, 1.0, mask),
                               band_psnr(output[:, 6:], reference[:, 6:], 1.0))
    assert ergas(spoiled, reference, 2, mask) == pytest.approx(ergas(output[:, 6:], reference[:, 6:], 2))
    with pytest.raises(SegSRError, match='no valid pixel'):
        band_psnr(output, reference, 1.0, np.zeros_like(mask))


@pytest.mark.parametrize('metric, raster, words', [
    ('calculate_sam', False, 'measures physical values of raster datasets'),
    ('calculate_band_psnr', False, 'measures physical values of raster datasets'),
    ('calculate_lr_psnr', True, 'measures 8-bit images'),
    ('calculate_clip_zero_shot', True, 'measures 8-bit images'),
])
def test_a_metric_the_dataset_cannot_feed_is_one_line_not_a_missing_column(metric, raster, words):
    import segsr.metrics  # noqa: F401  (registers the metrics)
    from segsr.models.validation_rows import check_metric_inputs

    with pytest.raises(SegSRError, match=words) as error:
        check_metric_inputs({'m': {'type': metric}}, {}, raster=raster)
    assert '\n' not in str(error.value) and 'val.metrics.m' in str(error.value)
    check_metric_inputs({'m': {'type': 'calculate_psnr'}}, {}, raster=raster)  # plain PSNR serves both


def test_bands_limit_a_measure_to_the_bands_named_and_ergas_takes_its_own_ratio():
    from segsr.metrics.spectral_metric import calculate_band_psnr, calculate_ergas, calculate_sam

    rng = np.random.default_rng(3)
    reference = rng.uniform(0.1, 0.5, (4, 16, 16))
    output = reference + rng.normal(0, [[[0.0]], [[0.01]], [[0.02]], [[0.04]]], reference.shape)
    data_range = np.array([1.0, 1.0, 0.5, 0.5])
    every = calculate_band_psnr(output, reference, data_range)
    chosen = calculate_band_psnr(output, reference, data_range, bands=[2, 4])
    assert np.isinf(every[0]) and np.allclose(chosen, every[[1, 3]])
    assert calculate_sam(output, reference, data_range, bands=[2, 3]) == calculate_sam(output[1:3], reference[1:3],
                                                                                        data_range)
    ergas_x1 = calculate_ergas(output, reference, data_range, scale=1, bands=[2, 3, 4])
    assert np.isclose(calculate_ergas(output, reference, data_range, scale=1, bands=[2, 3, 4], ergas_scale=2),
                      ergas_x1 / 2)
