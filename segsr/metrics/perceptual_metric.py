"""LPIPS and DISTS (torchmetrics) as basicsr metrics: ``val.metrics: {lpips: {type: calculate_lpips}}``.

Both compare deep features of an ImageNet backbone (AlexNet/VGG/SqueezeNet for LPIPS, VGG16 for
DISTS). torchmetrics ships their small learned heads; the backbone weights are torchvision's
checkpoint files, which are never downloaded at run time: ``backbone_weights`` names a local copy
(default: torch's hub cache, where torchvision itself would look). Lower is better for both; set
``better: lower`` so basicsr's best-value tracking agrees.
"""

import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY
from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights, WeightsEnum

from segsr.utils.errors import SegSRError

LPIPS_BACKBONES: dict[str, WeightsEnum] = {
    'alex': AlexNet_Weights.DEFAULT, 'vgg': VGG16_Weights.DEFAULT, 'squeeze': SqueezeNet1_1_Weights.DEFAULT,
}
DISTS_BACKBONE = VGG16_Weights.DEFAULT
LOAD_ERRORS = (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError)


def hub_file(weights: WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / 'checkpoints' / Path(urlparse(weights.url).path).name


@contextmanager
def local_backbone(weights: WeightsEnum, path: str | None, metric: str) -> Iterator[None]:
    """torchvision finds ``weights`` at ``path`` (or in the hub cache) instead of downloading them."""
    expected = hub_file(weights)
    source = Path(path).expanduser() if path else expected
    if not source.is_file():
        raise SegSRError(f'{metric}: backbone weights {source} not found; fetch {weights.url} and set '
                         f'backbone_weights: <that file> in its val.metrics entry (or put it at {expected})')
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as hub:
        link = Path(hub) / 'checkpoints' / expected.name
        link.parent.mkdir()
        link.symlink_to(source.resolve())
        torch.hub.set_dir(hub)
        try:
            yield
        except LOAD_ERRORS as err:
            raise SegSRError(f'{metric}: {source} is not the torchvision checkpoint {expected.name} '
                             f'({str(err).splitlines()[0]}); fetch {weights.url}') from None
        finally:
            torch.hub.set_dir(previous)


@lru_cache(maxsize=4)
def lpips_network(net: str, backbone_weights: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    if net not in LPIPS_BACKBONES:
        raise SegSRError(f'lpips net {net!r} is not known; use one of {list(LPIPS_BACKBONES)}')
    with local_backbone(LPIPS_BACKBONES[net], backbone_weights, 'lpips'):
        metric = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True).eval()
    return metric.net


@lru_cache(maxsize=2)
def dists_network(backbone_weights: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from torchmetrics.functional.image.dists import DISTSNetwork

    with local_backbone(DISTS_BACKBONE, backbone_weights, 'dists'):
        return DISTSNetwork().eval()


def to_tensor(img: np.ndarray, crop_border: int) -> torch.Tensor:
    """basicsr's uint8 BGR HWC image -> (1, 3, H, W) RGB float in [0, 1], border cropped."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    rgb = np.ascontiguousarray(img[..., ::-1], dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)


@METRIC_REGISTRY.register()
@torch.no_grad()
def calculate_lpips(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, net: str = 'alex',
                    backbone_weights: str | None = None, better: str = 'lower') -> float:
    """LPIPS distance (0 for identical images); ``better`` is read by basicsr's best-value tracking."""
    network = lpips_network(net, backbone_weights)
    return float(network(to_tensor(img, crop_border), to_tensor(img2, crop_border), normalize=True).mean())


@METRIC_REGISTRY.register()
@torch.no_grad()
def calculate_dists(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, backbone_weights: str | None = None,
                    better: str = 'lower') -> float:
    """DISTS distance (0 for identical images); ``better`` is read by basicsr's best-value tracking."""
    network = dists_network(backbone_weights)
    return float(network(to_tensor(img, crop_border), to_tensor(img2, crop_border)))
