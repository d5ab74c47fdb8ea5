"""The consistency, reference, uncertainty and semantic metrics as basicsr metrics for ``val.metrics``.

Each wraps a pure function of :mod:`segsr.metrics.consistency`, :mod:`~segsr.metrics.reference`,
:mod:`~segsr.metrics.uncertainty` or :mod:`~segsr.metrics.semantic` (docs/evaluation.md). basicsr hands
8-bit BGR HWC images; they are compared as RGB in [0, 1]. Parameters named ``lq``, ``spread``,
``label`` and ``class_names`` are filled by the evaluation loop (:mod:`segsr.metrics.inputs`);
``better`` is read by basicsr's best-value tracking.
"""

from functools import lru_cache

import numpy as np
import torch
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import METRIC_REGISTRY

from segsr.metrics.consistency import lr_consistency
from segsr.metrics.reference import cpsnr, detail_shares
from segsr.metrics.semantic import (
    DEFAULT_TEMPLATE,
    clip_similarity,
    prompt_embeddings,
    semantic_clip,
    zero_shot_class,
)
from segsr.metrics.uncertainty import spread_error_correlation
from segsr.utils.errors import SegSRError


def to_unit_rgb(img: np.ndarray, crop_border: int = 0) -> np.ndarray:
    """basicsr's 8-bit BGR HWC image -> float64 RGB in [0, 1], border cropped."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    img = img[..., ::-1] if img.ndim == 3 and img.shape[2] == 3 else img.reshape(*img.shape[:2], -1)
    return np.ascontiguousarray(img, dtype=np.float64) / 255.0


def consistency(img: np.ndarray, lq: np.ndarray, physical_scale: float, physical_offset: float) -> dict:
    output, lr = to_unit_rgb(img), to_unit_rgb(lq)
    return lr_consistency(output, lr, img.shape[0] // lq.shape[0],
                          to_physical=lambda values: physical_offset + physical_scale * values)


@METRIC_REGISTRY.register()
def calculate_lr_psnr(img: np.ndarray, lq: np.ndarray, better: str = 'higher') -> float:
    """PSNR (dB) of the output degraded back to the LR grid against the LR input."""
    return consistency(img, lq, 1.0, 0.0)['psnr']


@METRIC_REGISTRY.register()
def calculate_lr_mae(img: np.ndarray, lq: np.ndarray, physical_scale: float = 255.0, physical_offset: float = 0.0,
                     better: str = 'lower') -> float:
    """Mean absolute error of the degraded output against the LR, in ``physical_offset + physical_scale * v``
    units (default: levels of the 8-bit files)."""
    return consistency(img, lq, physical_scale, physical_offset)['mae']


@METRIC_REGISTRY.register()
def calculate_lr_sam(img: np.ndarray, lq: np.ndarray, better: str = 'lower') -> float:
    """Spectral angle (degrees) between the degraded output and the LR; 3 or more bands."""
    return consistency(img, lq, 1.0, 0.0)['sam']


@METRIC_REGISTRY.register()
def calculate_cpsnr(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, max_shift: int = 3,
                    better: str = 'higher') -> float:
    """PSNR after the best integer shift within ``max_shift`` pixels and the best per-band bias."""
    return cpsnr(to_unit_rgb(img, crop_border), to_unit_rgb(img2, crop_border), max_shift)


def shares(img: np.ndarray, img2: np.ndarray, lq: np.ndarray, crop_border: int, tolerance: float) -> dict:
    scale = img.shape[0] // lq.shape[0]
    bicubic = np.clip(imresize(to_unit_rgb(lq).astype(np.float32), scale), 0, 1)  # as test.py's bicubic rows
    if crop_border:
        bicubic = bicubic[crop_border:-crop_border, crop_border:-crop_border]
    return detail_shares(to_unit_rgb(img, crop_border), to_unit_rgb(img2, crop_border), bicubic, tolerance)


@METRIC_REGISTRY.register()
def calculate_improvement(img: np.ndarray, img2: np.ndarray, lq: np.ndarray, crop_border: int = 0,
                          tolerance: float = 0.01, better: str = 'higher') -> float:
    """Share of pixels the output changed from bicubic towards the HR."""
    return shares(img, img2, lq, crop_border, tolerance)['improvement']


@METRIC_REGISTRY.register()
def calculate_hallucination(img: np.ndarray, img2: np.ndarray, lq: np.ndarray, crop_border: int = 0,
                            tolerance: float = 0.01, better: str = 'lower') -> float:
    """Share of pixels the output changed from bicubic away from the HR."""
    return shares(img, img2, lq, crop_border, tolerance)['hallucination']


@METRIC_REGISTRY.register()
def calculate_omission(img: np.ndarray, img2: np.ndarray, lq: np.ndarray, crop_border: int = 0,
                       tolerance: float = 0.01, better: str = 'lower') -> float:
    """Share of pixels where the HR has detail bicubic lacks and the output kept bicubic's blur."""
    return shares(img, img2, lq, crop_border, tolerance)['omission']


@METRIC_REGISTRY.register()
def calculate_spread_error_spearman(img: np.ndarray, img2: np.ndarray, spread: np.ndarray, crop_border: int = 0,
                                    better: str = 'higher') -> float:
    """Spearman correlation of the self-ensemble spread with the absolute error (needs ``val.self_ensemble``)."""
    if crop_border:
        spread = spread[crop_border:-crop_border, crop_border:-crop_border]
    return spread_error_correlation(spread, to_unit_rgb(img, crop_border), to_unit_rgb(img2, crop_border))


@METRIC_REGISTRY.register()
def calculate_clip_similarity(img: np.ndarray, img2: np.ndarray, model: str, weights: str,
                              quick_gelu: str | bool = 'auto', better: str = 'higher') -> float:
    """Cosine similarity of the output's and the HR's CLIP image embeddings."""
    return clip_similarity(semantic_clip(model, weights, quick_gelu), to_unit_rgb(img), to_unit_rgb(img2))


@lru_cache(maxsize=4)
def cached_prompts(model: str, weights: str, quick_gelu: str | bool, class_names: tuple[str, ...],
                   template: str) -> torch.Tensor:
    return prompt_embeddings(semantic_clip(model, weights, quick_gelu), list(class_names), template)


@METRIC_REGISTRY.register()
def calculate_clip_zero_shot(img: np.ndarray, img2: np.ndarray, label: str, class_names: list[str], model: str,
                             weights: str, classify: str = 'output', quick_gelu: str | bool = 'auto',
                             template: str = DEFAULT_TEMPLATE, better: str = 'higher') -> float:
    """1 when CLIP's zero-shot class of the output (``classify: reference``: of the HR) is the image's class,
    else 0; averaged over images, the accuracy."""
    if classify not in ('output', 'reference'):
        raise SegSRError(f'calculate_clip_zero_shot: classify is {classify!r}; use output or reference')
    clip = semantic_clip(model, weights, quick_gelu)
    texts = cached_prompts(model, weights, quick_gelu, tuple(class_names), template)
    image = to_unit_rgb(img2 if classify == 'reference' else img)
    return float(zero_shot_class(clip, image, list(class_names), texts) == label)
