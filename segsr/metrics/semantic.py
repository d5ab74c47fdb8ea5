"""Semantic fidelity with a CLIP model: does the super-resolved image keep the scene's meaning?

Any open_clip model whose weights are a local file works (a remote-sensing CLIP such as RemoteCLIP or
GeoRSCLIP gives meaningful numbers; a random one only exercises the code). Images are float HWC RGB
arrays in [0, 1], resized to the model's input size and normalised with its mean and std.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segsr.clip.loader import LoadedCLIP, encode_texts, load_clip
from segsr.utils.errors import SegSRError

DEFAULT_TEMPLATE = 'a satellite image of {}.'


@lru_cache(maxsize=2)
def semantic_clip(model: str, weights: str, quick_gelu: str | bool = 'auto') -> LoadedCLIP:
    """The image and text towers of ``model`` with the weights in the local file ``weights``."""
    if not Path(weights).expanduser().is_file():
        raise SegSRError(f'CLIP weights {weights} not found; give an open_clip checkpoint file (e.g. RemoteCLIP) '
                         'as the metric\'s weights option')
    return load_clip(model, str(Path(weights).expanduser()), quick_gelu, with_text=True)


@torch.no_grad()
def image_embedding(clip: LoadedCLIP, image: np.ndarray) -> torch.Tensor:
    """L2-normalised embedding (C,) of one image."""
    size = clip.model.visual.image_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    pixels = F.interpolate(pixels, size=size, mode='bicubic', antialias=True, align_corners=False)
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (clip.mean, clip.std))
    return clip.model.encode_image((pixels - mean) / std, normalize=True)[0]


def clip_similarity(clip: LoadedCLIP, output: np.ndarray, reference: np.ndarray) -> float:
    """Cosine similarity of the output's and the reference's CLIP image embeddings (1: same meaning)."""
    return float(image_embedding(clip, output) @ image_embedding(clip, reference))


def prompt(class_name: str, template: str = DEFAULT_TEMPLATE) -> str:
    """``dense_residential`` -> ``a satellite image of dense residential.``"""
    return template.format(class_name.replace('_', ' ').replace('-', ' '))


def prompt_embeddings(clip: LoadedCLIP, class_names: list[str], template: str = DEFAULT_TEMPLATE) -> torch.Tensor:
    """(classes, C) text embeddings of the classes' prompts: computed once, used for every image."""
    return encode_texts(clip, [prompt(name, template) for name in class_names])


def zero_shot_class(clip: LoadedCLIP, image: np.ndarray, class_names: list[str], texts: torch.Tensor) -> str:
    """The class whose prompt embedding (``texts``, from :func:`prompt_embeddings`) is closest to the image's."""
    return class_names[int((texts @ image_embedding(clip, image)).argmax())]
