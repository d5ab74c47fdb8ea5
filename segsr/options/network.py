"""Network options checked against the constructors they are passed to, before anything is built.

A misspelt key must not train a different network: ``window_szie: 16`` would otherwise build a
window-8 HAT, and a wrong LMM key would end in a raw TypeError minutes later. Each key of a
``network_*`` section (and of the sections a constructor hands to another one, e.g. SEGSR's
``backbone``, ``sfem``, ``slm``, ``lmm`` and SFEM's ``lora``) is compared with the parameters of the
constructor that receives it.
"""

import ast
import difflib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.discriminator_arch import discriminator_problem
from segsr.archs.lmm_arch import LMM
from segsr.archs.segsr_arch import SEGSR
from segsr.archs.sfem_arch import SFEM, clip_bands, display_bounds
from segsr.archs.slm_arch import SLM, TEXT_INIT_KEYS
from segsr.clip.lora import attach_lora
from segsr.utils.errors import SegSRError

SIMILARITY = 0.6


@dataclass(frozen=True)
class Section:
    """A nested option mapping: the constructor it is passed to and the arguments its parent supplies.

    ``target`` None means the section names a registered arch in its own ``type`` key.
    ``keys`` replaces the constructor's parameters for a plain mapping read by key; ``name`` is what
    messages call the receiver (the constructor's name by default).
    """

    target: Callable | None = None
    supplied: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    name: str = ''


SFEM_SECTIONS = {'lora': Section(attach_lora, supplied=('tower',), name='LoRA')}
SLM_SECTIONS = {'text_init': Section(keys=TEXT_INIT_KEYS, name='SLM text_init')}
SEGSR_SECTIONS = {
    'backbone': Section(),
    'sfem': Section(SFEM, supplied=('scale', 'loaded_clip', 'compat', 'in_chans', 'sr_mean',
                                    'sr_img_range')),
    'slm': Section(SLM, supplied=('embed_dim', 'num_stages', 'scale', 'patch_size', 'loaded_clip')),
    'lmm': Section(LMM, supplied=('num_feat', 'map_channels')),
}
# Nested sections per constructor; a subclass (GuidedEDSR, ...) has those of its base.
NESTED = ((SEGSR, SEGSR_SECTIONS), (SFEM, SFEM_SECTIONS), (SLM, SLM_SECTIONS))
# The input band count of an SR arch, by the name HAT/SwinIR and basicsr's conv archs give it.
BAND_KEYS = ('in_chans', 'num_in_ch')
# basicsr archs that subtract a 3-value RGB mean, and their staged versions, which take any band count.
RGB_ONLY = {'EDSR': 'StagedEDSR', 'RCAN': 'StagedRCAN'}


def constructor_parameters(target: Callable) -> tuple[dict[str, inspect.Parameter], bool]:
    """Named parameters a constructor takes, following ``**kwargs`` into the base classes' constructors,
    and whether it also takes keys that cannot be checked here.

    A ``**kwargs`` that the constructor never uses (basicsr's SwinIR) drops its keys silently, so only the
    named parameters count as options. One that it passes on to something other than its base class
    (a user's arch wrapping another) takes keys this check cannot follow.
    """
    functions = [cls.__init__ for cls in target.__mro__ if '__init__' in vars(cls)] if inspect.isclass(target) \
        else [target]
    parameters: dict[str, inspect.Parameter] = {}
    for function in functions:
        signature = inspect.signature(function)
        for name, parameter in signature.parameters.items():
            if name != 'self' and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                parameters.setdefault(name, parameter)
        kwargs = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
        if kwargs is None:
            return parameters, False
        if forwards_elsewhere(function, kwargs):
            return parameters, True
    return parameters, False


def forwards_elsewhere(function: Callable, kwargs: str) -> bool:
    """Whether ``function`` hands ``**kwargs`` to a call other than ``super().__init__``."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return False
    body = ast.parse(source).body[0]
    for node in ast.walk(body):
        if isinstance(node, ast.Call) and any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == kwargs
                                              for k in node.keywords):
            callee = node.func
            to_super = isinstance(callee, ast.Attribute) and callee.attr == '__init__' and \
                isinstance(callee.value, ast.Call) and getattr(callee.value.func, 'id', '') == 'super'
            if not to_super:
                return True
    return False


def takes_flat_backbone(target: Callable) -> bool:
    """SEGSR and its subclasses also take the backbone's keys flat, as the published option files write them."""
    return inspect.isclass(target) and issubclass(target, SEGSR)


def sections_of(target: Callable) -> dict[str, Section]:
    if inspect.isclass(target):
        return next((sections for cls, sections in NESTED if issubclass(target, cls)), {})
    return {}


def _unknown(key: str, known: list[str], where: str, owner: str) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=SIMILARITY)
    hint = f'did you mean "{close[0]}"?' if close else f'{owner} takes: {", ".join(known)}'
    return f'{where}.{key}: unknown key for {owner}; {hint}'


def input_bands(options: dict) -> int:
    """The bands an SR arch's options say it takes (3 when they do not say)."""
    return next((options[key] for key in BAND_KEYS if isinstance(options.get(key), int)), 3)


def _band_problems(name: str, options: dict, where: str) -> list[str]:
    bands = input_bands(options)
    if name in RGB_ONLY and bands != 3:
        return [f'{where}.num_in_ch: basicsr\'s {name} subtracts a 3-band RGB mean and cannot take {bands} bands; '
                f'use type: {RGB_ONLY[name]} (the same network, any band count)']
    return []


def _clip_band_problems(options: dict, where: str) -> list[str]:
    """SEGSR on a backbone of other than 3 bands must say which three CLIP sees."""
    backbone = options.get('backbone')
    bands = input_bands(backbone if isinstance(backbone, dict) else options)
    sfem = options.get('sfem') if isinstance(options.get('sfem'), dict) else {}
    try:
        clip_bands(sfem.get('rgb_bands'), bands)
        display_bounds(sfem.get('display_range'))
    except SegSRError as error:
        return [str(error).replace('network_g.', f'{where}.', 1)]
    return []


def _check_arch(options: dict, where: str, problems: list[str], default_type: str | None = None) -> None:
    name = options.get('type', default_type)
    if name not in ARCH_REGISTRY:
        close = difflib.get_close_matches(str(name), list(ARCH_REGISTRY.keys()), n=1, cutoff=SIMILARITY)
        hint = f'did you mean "{close[0]}"?' if close else 'give a registered arch such as HAT'
        problems.append(f'{where}.type: unknown arch "{name}"; {hint}')
        return
    problems.extend(_band_problems(name, options, where))
    _check_call(ARCH_REGISTRY.get(name), {k: v for k, v in options.items() if k != 'type'}, where, problems)


def _check_call(target: Callable, options: dict, where: str, problems: list[str], supplied: tuple[str, ...] = (),
                owner: str = '') -> None:
    parameters, open_ended = constructor_parameters(target)
    known = [name for name in parameters if name not in supplied]
    owner = owner or target.__name__
    unknown = {key: value for key, value in options.items() if key not in known and not open_ended}
    if unknown and takes_flat_backbone(target) and options.get('backbone') is None:
        _check_arch({**unknown, 'upscale': options.get('upscale', 4)}, where, problems, target.backbone_type)
    else:
        problems.extend(_unknown(str(key), known, where, owner) for key in unknown)
    for name in known:
        if parameters[name].default is inspect.Parameter.empty and name not in options:
            problems.append(f'{where}.{name}: missing; {owner} needs it')
    for key, section in sections_of(target).items():
        value = options.get(key)
        if isinstance(value, dict):
            _check_section(section, value, f'{where}.{key}', problems, getattr(target, 'backbone_type', None))
    if takes_flat_backbone(target):
        problems.extend(_clip_band_problems(options, where))


def _check_section(section: Section, options: dict, where: str, problems: list[str], default_type: str | None) -> None:
    if section.keys:
        problems.extend(_unknown(str(key), list(section.keys), where, section.name)
                        for key in options if key not in section.keys)
    elif section.target is None:
        _check_arch(options, where, problems, default_type)
    else:
        _check_call(section.target, options, where, problems, section.supplied, section.name)


def network_option_problems(opt: dict) -> list[str]:
    """One line per unknown or missing key in every ``network_*`` section of an option dict."""
    problems: list[str] = []
    for key, section in opt.items():
        if str(key).startswith('network_') and isinstance(section, dict) and 'type' in section:
            _check_arch(section, key, problems)
    return problems


def discriminator_problems(opt: dict) -> list[str]:
    """A ``network_d`` that cannot judge the training crops (``datasets.train.gt_size``), in one line."""
    network_d = opt.get('network_d')
    if not isinstance(network_d, dict):
        return []
    train = (opt.get('datasets') or {}).get('train')
    crop = train.get('gt_size') if isinstance(train, dict) and isinstance(train.get('gt_size'), int) else None
    problem = discriminator_problem(network_d, crop)
    return [problem] if problem else []
