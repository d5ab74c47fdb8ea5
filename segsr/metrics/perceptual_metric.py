"""LPIPS and DISTS (torchmetrics) as basicsr metrics: ``val.metrics: {lpips: {type: calculate_lpips}}``.

Both compare deep features of an ImageNet backbone (AlexNet/VGG/SqueezeNet for LPIPS, VGG16 for
DISTS). torchmetrics ships their small learned heads; the backbone weights are torchvision's
checkpoint files, which are never downloaded at run time: ``backbone_weights`` names a local copy
(default: torch's hub cache, where torchvision itself would look). Lower is better for both; set
``better: lower`` so basicsr's best-value tracking agrees.
"""

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from basicsr.utils.registry import METRIC_REGISTRY
from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights, WeightsEnum

from segsr.utils.errors import SegSRError
from segsr.weights.files import load_checkpoint

LPIPS_BACKBONES: dict[str, tuple[str, WeightsEnum]] = {
    'alex': ('alexnet', AlexNet_Weights.DEFAULT), 'vgg': ('vgg16', VGG16_Weights.DEFAULT),
    'squeeze': ('squeezenet1_1', SqueezeNet1_1_Weights.DEFAULT),
}
DISTS_BACKBONE = ('vgg16', VGG16_Weights.DEFAULT)


def hub_file(weights: WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / 'checkpoints' / Path(urlparse(weights.url).path).name


def load_backbone(arch: str, weights: WeightsEnum, path: str | None, metric: str) -> torch.nn.Module:
    """The torchvision ``arch`` with the weights of the local file ``path`` (or of the hub cache), read by
    segsr's weights-only loader: torchvision's own loader would unpickle the file in full."""
    expected = hub_file(weights)
    source = Path(path).expanduser() if path else expected
    if not source.is_file():
        raise SegSRError(f'{metric}: backbone weights {source} not found; fetch {weights.url} and set '
                         f'backbone_weights: <that file> in its val.metrics entry (or put it at {expected})')
    state = load_checkpoint(source)
    model = torchvision.models.get_model(arch, weights=None)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise SegSRError(f'{metric}: {source} is not the torchvision checkpoint {expected.name} '
                         f'({str(err).strip().splitlines()[0]}); fetch {weights.url}') from None
    return model.eval()


@lru_cache(maxsize=4)
def lpips_network(net: str, backbone_weights: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """torchmetrics' LPIPS with a randomly initialised backbone (nothing loaded), then given the local weights."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    if net not in LPIPS_BACKBONES:
        raise SegSRError(f'lpips net {net!r} is not known; use one of {list(LPIPS_BACKBONES)}')
    features = load_backbone(*LPIPS_BACKBONES[net], backbone_weights, 'lpips').features.state_dict()
    network = _NoTrainLpips(net=net, pnet_rand=True).eval()
    for stage in network.net.children():  # slices of torchvision's ``features``, children named by its indices
        stage.load_state_dict({key: features[key] for key in stage.state_dict()}, strict=True)
    return network


@lru_cache(maxsize=2)
def dists_network(backbone_weights: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """torchmetrics' DISTS, handed the VGG16 loaded here instead of building (and loading) its own."""
    from torchmetrics.functional.image import dists

    backbone = load_backbone(*DISTS_BACKBONE, backbone_weights, 'dists')
    with mock.patch.object(dists, 'vgg16', lambda **_: backbone):
        return dists.DISTSNetwork().eval()


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
