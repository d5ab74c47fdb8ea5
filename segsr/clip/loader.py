"""Build an open_clip model from a model name and a weights source (tag or file), offline-friendly.

``pretrained`` may be an open_clip tag (downloaded by open_clip where a network exists), a local
file in open_clip format (RemoteCLIP, GeoRSCLIP, SkyCLIP...), a plain vision-tower state dict, an
OpenAI TorchScript archive, or ``None`` for random weights. Every failure a user can fix ends in a
one-line :class:`SegSRError`.
"""

import logging
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch
import torch.nn as nn
from open_clip.factory import load_state_dict

from segsr.clip.torchscript_weights import read_torchscript_weights
from segsr.utils.errors import SegSRError

CLIP_CONFIG_DIR = Path(__file__).parent / 'configs'
open_clip.add_model_config(CLIP_CONFIG_DIR)

REPO_ROOT = Path(__file__).resolve().parents[2]
# File names of published CLIP weights fine-tuned from OpenAI's checkpoints (trained with QuickGELU).
OPENAI_DERIVED_MARKERS = ('openai', 'remoteclip', 'georsclip', 'rs5m', 'skyclip')
QUICK_GELU_CHOICES = ('auto', True, False)
TORCHSCRIPT_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')


@dataclass
class LoadedCLIP:
    """A CLIP model with pretrained weights in place, and how it should be fed."""

    model: nn.Module
    model_name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    quick_gelu: bool
    weights: Path | None


def model_config(model_name: str) -> dict:
    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise SegSRError(f"sfem.model '{model_name}' is not an open_clip model config; "
                         f'use one of open_clip.list_models() (e.g. ViT-B-16) or segsr-tiny-vit')
    vision = cfg['vision_cfg']
    if vision.get('timm_model_name') or isinstance(vision.get('layers'), (list, tuple)):
        raise SegSRError(f"sfem.model '{model_name}' has no open_clip ViT image tower; "
                         'use a ViT model such as ViT-B-16')
    return cfg


def resolve_path(path: str) -> Path | None:
    """A user path: absolute, relative to the working directory, or relative to the repository root."""
    candidate = Path(path).expanduser()
    for option in (candidate, REPO_ROOT / candidate):
        if option.is_file():
            return option.resolve()
    return None


def hub_endpoint_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face endpoint (``HF_ENDPOINT``, so mirrors count) accepts a connection.

    Asked before a download because huggingface_hub retries an unreachable endpoint for about a
    minute before it gives up.
    """
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == 'https' else 80)), timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline(offline: bool):
    """huggingface_hub's offline mode: a cached file is still found, a missing one fails at once."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = previous or offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def fetch_tag(model_name: str, tag: str) -> Path:
    """The cached or downloaded weights file of an open_clip tag."""
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    unreachable = bool(cfg.get('hf_hub')) and not hub_endpoint_reachable()
    try:
        with hub_offline(unreachable):
            return Path(open_clip.download_pretrained(cfg))
    except Exception as err:  # any download failure has the same fix
        from huggingface_hub import constants

        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if unreachable:
            reason = f'{constants.ENDPOINT} cannot be reached and the weights are not in the cache'
        raise SegSRError(f"the CLIP weights '{tag}' of {model_name} cannot be fetched ({reason}); download the "
                         'open_clip checkpoint where a network exists and set sfem.pretrained to its local path'
                         ) from None


def locate_weights(model_name: str, pretrained: str | None) -> tuple[Path | None, dict]:
    """The weights file and, for an open_clip tag, that tag's config (mean, std, quick_gelu)."""
    if not pretrained:
        return None, {}
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if tag_cfg:
        return fetch_tag(model_name, pretrained), tag_cfg
    path = resolve_path(pretrained)
    if path is None:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise SegSRError(f"sfem.pretrained '{pretrained}' is neither an existing file nor an open_clip tag of "
                         f'{model_name} (tags: {tags}); give a checkpoint path or a listed tag')
    return path, {}


def read_checkpoint(path: Path) -> tuple[dict, bool]:
    """A CLIP state dict with ``visual.`` keys, and whether the file was an OpenAI TorchScript archive."""
    try:
        state_dict, torchscript = load_state_dict(str(path)), False
    except Exception:  # not a torch.save file: OpenAI releases are TorchScript archives
        try:
            state_dict, torchscript = read_torchscript_weights(path), True
        except SegSRError as err:
            raise SegSRError(f'cannot read CLIP checkpoint {path} ({err}); '
                             'give an open_clip checkpoint or a plain state dict') from None
    state_dict = {k: v for k, v in state_dict.items() if k not in TORCHSCRIPT_EXTRA_KEYS}
    if not any(k.startswith('visual.') for k in state_dict):
        if 'conv1.weight' not in state_dict:
            raise SegSRError(f'{path} holds no open_clip image-tower weights (no visual.* or conv1.weight keys); '
                             'give an open_clip-format CLIP checkpoint')
        state_dict = {f'visual.{k}': v for k, v in state_dict.items()}
    return state_dict, torchscript


def choose_quick_gelu(option: str | bool, model_name: str, tag_cfg: dict, weights: Path | None,
                      torchscript: bool) -> bool:
    """QuickGELU follows the weights; see docs/segsr.md for the rule ``auto`` applies."""
    if option not in QUICK_GELU_CHOICES:
        raise SegSRError(f'sfem.quick_gelu is {option!r}; use auto, true or false')
    if option != 'auto':
        return option
    if tag_cfg:
        return bool(tag_cfg.get('quick_gelu', False))
    if torchscript:
        return True
    if weights is not None and any(m in weights.name.lower() for m in OPENAI_DERIVED_MARKERS):
        return True
    if weights is not None:
        logging.getLogger('basicsr').info(
            f'sfem.quick_gelu auto: {weights.name} is not known as OpenAI-derived, using nn.GELU; '
            'set sfem.quick_gelu: true for weights fine-tuned from OpenAI CLIP')
    return bool(model_config(model_name).get('quick_gelu', False))


def vision_summary(state_dict: dict) -> dict:
    """Architecture facts readable from image-tower weights (keys without the ``visual.`` prefix)."""
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r'transformer\.resblocks\.(\d+)\.', k))}
    summary = {'layers': len(blocks)}
    if 'conv1.weight' in state_dict:
        summary['width'] = state_dict['conv1.weight'].shape[0]
        summary['patch'] = state_dict['conv1.weight'].shape[-1]
    if 'proj' in state_dict:
        summary['embed_dim'] = state_dict['proj'].shape[-1]
    if 'transformer.resblocks.0.mlp.c_fc.weight' in state_dict:
        summary['mlp_width'] = state_dict['transformer.resblocks.0.mlp.c_fc.weight'].shape[0]
    return summary


def load_vision_weights(visual: nn.Module, vision_state: dict, model_name: str, weights: Path) -> None:
    """Strict load of the image tower; the positional grid is taken from the checkpoint as it is."""
    expected, found = vision_summary(visual.state_dict()), vision_summary(vision_state)
    differences = [f'{k} {found.get(k)} (model {v})' for k, v in expected.items() if found.get(k) != v]
    if differences:
        raise SegSRError(f"CLIP checkpoint {weights} does not match sfem.model '{model_name}': "
                         f"{', '.join(differences)}; set sfem.model to the checkpoint's architecture")
    if 'positional_embedding' in vision_state:
        visual.positional_embedding = nn.Parameter(torch.empty_like(vision_state['positional_embedding']))
    try:
        visual.load_state_dict(vision_state, strict=True)
    except RuntimeError as err:
        detail = ' '.join(str(err).split())[:300]
        raise SegSRError(f"CLIP checkpoint {weights} does not match sfem.model '{model_name}' ({detail}); "
                         "set sfem.model to the checkpoint's architecture") from None


def load_text_weights(model: nn.Module, state_dict: dict, weights: Path) -> None:
    text_state = {k: v for k, v in state_dict.items() if not k.startswith('visual.')}
    missing = [k for k in model.state_dict() if not k.startswith('visual.') and k not in text_state]
    if missing:
        raise SegSRError(f'{weights} has no complete text tower (missing {missing[0]}...); '
                         'slm.text_init needs a full open_clip CLIP checkpoint, or drop slm.text_init')
    model.load_state_dict(text_state, strict=False)


@contextmanager
def quiet_open_clip():
    """open_clip warns that a model built without weights is random; ours are loaded right after."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def load_clip(model: str = 'ViT-B-16', pretrained: str | None = 'openai', quick_gelu: str | bool = 'auto',
              with_text: bool = False, mean: list[float] | None = None, std: list[float] | None = None) -> LoadedCLIP:
    """An open_clip CLIP whose image tower (and text tower if asked) carries the requested weights."""
    model_name = model
    model_config(model_name)
    weights, tag_cfg = locate_weights(model_name, pretrained)
    state_dict, torchscript = read_checkpoint(weights) if weights is not None else ({}, False)
    use_quick_gelu = choose_quick_gelu(quick_gelu, model_name, tag_cfg, weights, torchscript)
    with quiet_open_clip():
        clip_model = open_clip.create_model(model_name, pretrained=None, quick_gelu=use_quick_gelu)
    if weights is not None:
        vision_state = {k[len('visual.'):]: v for k, v in state_dict.items() if k.startswith('visual.')}
        load_vision_weights(clip_model.visual, vision_state, model_name, weights)
        if with_text:
            load_text_weights(clip_model, state_dict, weights)
    preprocess = open_clip.get_model_preprocess_cfg(clip_model)
    return LoadedCLIP(
        model=clip_model.eval(),
        model_name=model_name,
        mean=tuple(mean or tag_cfg.get('mean') or preprocess['mean']),
        std=tuple(std or tag_cfg.get('std') or preprocess['std']),
        quick_gelu=use_quick_gelu,
        weights=weights,
    )


@torch.no_grad()
def encode_texts(clip: LoadedCLIP, texts: list[str]) -> torch.Tensor:
    """L2-normalised text embeddings (N, C) in CLIP's joint space."""
    tokens = open_clip.get_tokenizer(clip.model_name)(texts)
    return clip.model.encode_text(tokens, normalize=True)
