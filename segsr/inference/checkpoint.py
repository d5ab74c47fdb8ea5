"""Rebuild a super-resolution network from a weights file, with its options stored inside or given apart."""

from copy import deepcopy
from pathlib import Path

from basicsr.archs import build_network  # segsr/__init__ has patched basicsr and registered the archs
from torch import nn

from segsr.clip.lora import merge_lora
from segsr.data.radiometry import Radiometry
from segsr.utils.checkpoint import load_checkpoint, load_state_dict_checked, select_state_dict
from segsr.utils.errors import SegSRError
from segsr.utils.option_yaml import load_option_file


def _load_file(path: Path) -> dict:
    content = load_checkpoint(path)
    if not isinstance(content, dict):
        raise SegSRError(f'weights file {path} holds a {type(content).__name__}, not a dict: pass a checkpoint')
    return content


def _network_options_from_yaml(path: Path) -> dict:
    options = load_option_file(path)
    if not isinstance(options.get('network_g'), dict):
        raise SegSRError(f'options file {path} has no network_g section: pass a training or test options file')
    return options['network_g']


def load_network(
    weights: str | Path, options: str | Path | None = None, param_key: str = 'params_ema'
) -> tuple[nn.Module, dict]:
    """Build the network, load its weights strictly and fold any LoRA adapters into the frozen weights
    (no adapter matmuls at inference); return it (eval mode, CPU) with its options.

    Options given in a YAML file win over the ones stored in the checkpoint, so an old or
    foreign checkpoint (basicsr, HAT) can be used with an explicit configuration. ``param_key``
    falls back to ``params``, then to a bare state dict.
    """
    weights = Path(weights)
    content = _load_file(weights)
    if options is not None:
        network_options = _network_options_from_yaml(Path(options))
    elif isinstance(content.get('network_g'), dict):
        network_options = content['network_g']
    else:
        raise SegSRError(f'weights file {weights} stores no network options (network_g): pass --opt OPTIONS.yml')
    try:
        network = build_network(deepcopy(network_options))
    except KeyError as error:
        raise SegSRError(f'network type {network_options.get("type")!r} is not registered: {error}') from None
    state = select_state_dict(content, param_key, weights)
    fix = f'pass --opt with the {network_options["type"]} options these weights were trained with'
    load_state_dict_checked(network, state, strict=True, source=str(weights), fix=fix)
    merge_lora(network)
    return network.eval(), network_options



def stored_radiometry(weights: str | Path) -> Radiometry | None:
    """The radiometric contract a checkpoint was trained with; None for one made before contracts existed."""
    stored = _load_file(Path(weights)).get('radiometry')
    return Radiometry.from_dict(stored) if isinstance(stored, dict) else None
