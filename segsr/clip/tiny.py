"""A tiny random CLIP checkpoint (open_clip format) for the CPU demo and the tests.

The architecture is ``segsr-tiny-vit`` (configs/segsr-tiny-vit.json): a 2-block, 2-head ViT
of width 32 on 8-pixel patches, with a 1-block text tower; the file weighs about 7 MB.
"""

from pathlib import Path

import open_clip
import torch

from segsr.clip.loader import quiet_open_clip
from segsr.weights.files import atomic_torch_save

TINY_CLIP_MODEL = 'segsr-tiny-vit'


def write_tiny_clip_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Save random ``segsr-tiny-vit`` weights as an open_clip state dict; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(), quiet_open_clip():
        torch.manual_seed(seed)
        model = open_clip.create_model(TINY_CLIP_MODEL, pretrained=None)
    atomic_torch_save(model.state_dict(), path)
    return path
