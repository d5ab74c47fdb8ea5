"""Rebuild a super-resolution network from a weights file, with its options stored inside or given apart."""

from copy import deepcopy
from pathlib import Path

from basicsr.archs import build_network  # segsr/__init__ has patched basicsr and registered the archs
from torch import nn

from segsr.clip.lora import merge_lora
from segsr.options.network import network_option_problems
from segsr.options.safe_yaml import load_option_file
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError
from segsr.weights.files import check_finite_weights, load_checkpoint, load_state_dict_checked, select_state_dict


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
    """The network of :func:`load_network_and_contract` (eval mode, CPU) with its options."""
    network, network_options, _ = load_network_and_contract(weights, options, param_key)
    return network, network_options


def load_network_and_contract(
    weights: str | Path, options: str | Path | None = None, param_key: str = 'params_ema'
) -> tuple[nn.Module, dict, Radiometry | None]:
    """The network, its options and contract of :func:`load_network_contract_card`."""
    return load_network_contract_card(weights, options, param_key)[:3]


def load_network_contract_card(
    weights: str | Path, options: str | Path | None = None, param_key: str = 'params_ema'
) -> tuple[nn.Module, dict, Radiometry | None, dict | None]:
    """Build the network, load its weights strictly and fold any LoRA adapters into the frozen weights
    (no adapter matmuls at inference); return it (eval mode, CPU) with its options, the radiometric
    contract it was trained with (:func:`inference_contract`) and its model card (None for a file without one),
    read from the same file (safetensors or torch).

    Options given in a YAML file win over the ones stored in the checkpoint, so an old or
    foreign checkpoint (basicsr, HAT) can be used with an explicit configuration. ``param_key``
    falls back to ``params``, then to a bare state dict.
    """
    weights = Path(weights)
    content = _load_file(weights)
    if options is not None:
        network_options, origin = _network_options_from_yaml(Path(options)), f'options file {options}'
    elif isinstance(content.get('network_g'), dict):
        network_options, origin = content['network_g'], f'the network_g stored in {weights}'
    else:
        raise SegSRError(f'weights file {weights} stores no network options (network_g): pass --opt OPTIONS.yml')
    problems = network_option_problems({'network_g': network_options})
    if problems:
        raise SegSRError(f'{origin}: {"; ".join(problems)}; pass --opt with the options these weights were trained '
                         'with')
    try:
        network = build_network(deepcopy(network_options))
    except KeyError as error:
        raise SegSRError(f'network type {network_options.get("type")!r} is not registered: {error}') from None
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:  # values the constructor refuses
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SegSRError(f'cannot build {network_options.get("type")} from {origin} ({reason}); pass --opt with '
                         'the options these weights were trained with') from None
    state = select_state_dict(content, param_key, weights)
    if not isinstance(state, dict):
        raise SegSRError(f'weights file {weights} holds a {type(state).__name__} where its weights belong: '
                         'pass a checkpoint written by segsr or basicsr')
    check_finite_weights(state, str(weights))
    fix = f'pass --opt with the {network_options["type"]} options these weights were trained with'
    load_state_dict_checked(network, state, strict=True, source=str(weights), fix=fix)
    merge_lora(network)
    card = content.get('card') if isinstance(content.get('card'), dict) else None
    return network.eval(), network_options, inference_contract(content, weights), card


def contract_of(content: dict, weights: Path) -> Radiometry | None:
    """The radiometric contract stored in a checkpoint's content; None for one made before contracts existed."""
    stored = content.get('radiometry')
    if stored is None:
        return None
    try:
        return Radiometry.from_dict(stored)
    except SegSRError as error:
        raise SegSRError(f'weights file {weights} holds an invalid radiometric contract ({error}); '
                         'retrain or save the checkpoint again with a valid radiometry section') from None
    except (AttributeError, KeyError, TypeError, ValueError):
        raise SegSRError(f'weights file {weights} holds an unreadable radiometry entry ({stored!r:.80}); '
                         'save the checkpoint again with segsr') from None


def inference_contract(content: dict, weights: Path) -> Radiometry | None:
    """The contract inference applies: None also for the 8-bit default map of all bands, which every
    checkpoint without a contract gets anyway."""
    contract = contract_of(content, weights)
    return None if contract is None or (contract.is_default and not contract.bands) else contract


def stored_radiometry(weights: str | Path) -> Radiometry | None:
    """The radiometric contract a checkpoint was trained with; None for one made before contracts existed."""
    return contract_of(_load_file(Path(weights)), Path(weights))
