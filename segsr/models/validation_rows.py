"""What a validation row holds and which metrics a dataset can feed: the pieces of SegSRModel's validation that
need no model."""

from collections import OrderedDict

import numpy as np
import torch
from basicsr.utils.matlab_functions import imresize

from segsr.data.classes import image_class
from segsr.metrics.inputs import metric_inputs
from segsr.utils.errors import SegSRError


def bicubic_upscale(lq: torch.Tensor, scale: int, clamp: bool = True) -> torch.Tensor:
    """MATLAB-style bicubic upscaling of a (1, C, H, W) batch: the reference every SR result is compared to.

    8-bit images are clamped to [0, 1] as they would be saved; physical values (``clamp`` False) are not.
    """
    upscaled = imresize(lq[0].detach().float().cpu(), scale)
    return (upscaled.clamp_(0, 1) if clamp else upscaled).unsqueeze(0)


def add_metric(row: OrderedDict, metric: str, value) -> None:
    """A metric's value in a result row; a per-band measure adds its mean and one column per band."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    row[metric] = float(values.mean())
    if values.size > 1:
        for band, band_value in enumerate(values, start=1):
            row[f'{metric}_band{band}'] = float(band_value)


IMAGE_INPUTS = {'lq', 'spread', 'label', 'class_names'}
"""What metrics of 8-bit images take and raster datasets (physical values) do not give."""
RASTER_INPUTS = {'data_range', 'mask', 'scale'}
"""What spectral metrics take from a raster dataset's contract and 8-bit images do not give."""


def check_metric_inputs(metrics_opt: dict, val_opt: dict, raster: bool = False) -> None:
    """A metric that needs the self-ensemble spread is refused without ``val.self_ensemble``, and one that needs
    what this kind of dataset cannot give is refused rather than left out of the results."""
    for metric, metric_opt in metrics_opt.items():
        inputs = metric_inputs(metric_opt)
        if 'spread' in inputs and not val_opt.get('self_ensemble', False):
            raise SegSRError(f'val.metrics.{metric} ranks errors by the self-ensemble spread: set '
                             'val.self_ensemble: true, or drop the metric')
        if raster and inputs & IMAGE_INPUTS:
            raise SegSRError(f'val.metrics.{metric} ({metric_opt["type"]}) measures 8-bit images; raster datasets '
                             'are measured in physical values: use calculate_band_psnr, calculate_band_ssim, '
                             'calculate_sam or calculate_ergas, or drop the metric')
        if not raster and inputs & RASTER_INPUTS:
            raise SegSRError(f'val.metrics.{metric} ({metric_opt["type"]}) measures physical values of raster '
                             'datasets (RasterDataset with a radiometry contract); use calculate_psnr or '
                             'calculate_ssim for 8-bit images, or drop the metric')


def dataset_classes(dataset) -> list[str]:
    """Every class of a labelled dataset's images, sorted: the candidates of zero-shot classification."""
    manifest = getattr(dataset, 'manifest', None)
    return sorted({image_class(pair['gt_path'], manifest) for pair in dataset.paths})
