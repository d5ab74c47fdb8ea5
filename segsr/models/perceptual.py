"""basicsr's ``PerceptualLoss`` on VGG weights read from a local file, weights-only, never downloaded.

basicsr's ``VGGFeatureExtractor`` loads ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` with the full
unpickler or else fetches torchvision's weights. Here ``train.perceptual_opt.vgg_weights`` names a
torchvision VGG state dict (default: that conventional path, under the working directory or ``--root``),
read through segsr's weights-only loader; while basicsr builds the loss, its VGG constructor is handed the
convolutions built from that file, so basicsr's own extractor and loss run unchanged.

The file may be truncated: it needs only the ``features.<i>.*`` tensors of the layers up to the deepest one
``layer_weights`` names (``conv1_2`` .. ``conv5_4``), so a file of a few megabytes serves early layers.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import basicsr.archs.vgg_arch as basicsr_vgg
from basicsr.losses import build_loss
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from segsr.utils.errors import SegSRError
from segsr.weights.files import load_checkpoint, load_state_dict_checked

VGG_FILE = 'experiments/pretrained_models/vgg19-dcbb9e9d.pth'
VGG_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
VGG_CONFIGS = {'vgg11': 'A', 'vgg13': 'B', 'vgg16': 'D', 'vgg19': 'E'}


def vgg_weights_path(file: str | None, root: str | Path) -> Path:
    """The VGG file: ``file`` (or the conventional path) as given, else under the run's root; it must exist."""
    name = Path(file or VGG_FILE).expanduser()
    for candidate in (name, Path(root) / name):
        if candidate.is_file():
            return candidate
    source = f'train.perceptual_opt.vgg_weights: {file}' if file else f'the perceptual loss needs {VGG_FILE}'
    raise SegSRError(f'{source} does not exist; nothing is downloaded at run time: fetch torchvision\'s VGG19 '
                     f'weights ({VGG_URL}) to that path, or set train.perceptual_opt.vgg_weights to a local copy')


def vgg_layers(vgg_type: str, layer_names: list[str], path: Path) -> nn.Sequential:
    """The convolutions of ``vgg_type`` up to the deepest of ``layer_names``, with the weights of ``path``."""
    plain = vgg_type.removesuffix('_bn')
    if plain not in VGG_CONFIGS:
        raise SegSRError(f'train.perceptual_opt.vgg_type is {vgg_type!r}; use one of {", ".join(VGG_CONFIGS)} '
                         '(or with _bn)')
    names = basicsr_vgg.NAMES[plain]
    names = basicsr_vgg.insert_bn(names) if vgg_type.endswith('_bn') else names
    unknown = [name for name in layer_names if name not in names]
    if unknown:
        raise SegSRError(f'train.perceptual_opt.layer_weights names {", ".join(unknown)}, not layers of {vgg_type}; '
                         f'use names such as conv1_2, conv3_4, conv5_4')
    deepest = max(names.index(name) for name in layer_names)
    layers = make_layers(cfgs[VGG_CONFIGS[plain]], batch_norm=vgg_type.endswith('_bn'))[:deepest + 1]
    state = load_checkpoint(path)
    needed = {f'features.{key}' for key in layers.state_dict()}
    missing = sorted(needed - set(state), key=lambda key: (int(key.split('.')[1]), key))
    if missing:
        raise SegSRError(f'VGG weights {path} lack {len(missing)} tensors of the layers up to '
                         f'{names[deepest]} (e.g. {missing[0]}); use the whole torchvision {vgg_type} state dict')
    load_state_dict_checked(layers, {key.removeprefix('features.'): state[key] for key in needed}, True, str(path))
    return layers


@contextmanager
def basicsr_vgg_from(vgg_type: str, layers: nn.Sequential) -> Iterator[None]:
    """While basicsr builds a VGG feature extractor, its torchvision constructor returns ``layers`` and its
    own file path is never tried."""
    saved = basicsr_vgg.vgg, basicsr_vgg.VGG_PRETRAIN_PATH
    basicsr_vgg.vgg = SimpleNamespace(**{vgg_type: lambda pretrained: SimpleNamespace(features=layers)})
    basicsr_vgg.VGG_PRETRAIN_PATH = ''
    try:
        yield
    finally:
        basicsr_vgg.vgg, basicsr_vgg.VGG_PRETRAIN_PATH = saved


def build_perceptual_loss(perceptual_opt: dict, root: str | Path) -> nn.Module:
    """basicsr's loss of ``perceptual_opt`` (``PerceptualLoss``: on the local VGG file, see the module)."""
    options = dict(perceptual_opt)
    file = options.pop('vgg_weights', None)
    if options['type'] != 'PerceptualLoss':
        return build_loss(options)
    vgg_type = options.get('vgg_type', 'vgg19')
    layers = vgg_layers(vgg_type, list(options['layer_weights']), vgg_weights_path(file, root))
    with basicsr_vgg_from(vgg_type, layers):
        return build_loss(options)
