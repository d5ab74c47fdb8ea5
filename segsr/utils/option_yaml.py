"""Option files and ``--force_yml`` values read as data: a safe YAML loader, never one that builds Python objects.

basicsr's ``ordered_yaml`` uses PyYAML's full loader, under which a ``!!python/object/apply`` tag runs code.
This loader builds only plain mappings (ordered, as every dict is), lists and scalars, and also reads
exponent floats without a dot (``1e-4``), which YAML 1.1 would leave a string.
"""

import re
from pathlib import Path

import yaml

from segsr.utils.errors import SegSRError

EXPONENT_FLOAT = re.compile(r'^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$')


class OptionLoader(yaml.SafeLoader):
    """SafeLoader plus exponent floats; an unknown tag (every ``!!python/...``) is a constructor error."""


OptionLoader.add_implicit_resolver('tag:yaml.org,2002:float', EXPONENT_FLOAT, list('-+0123456789'))


def _describe(err: yaml.YAMLError) -> tuple[str, str]:
    """Where (line, column) and what the YAML problem is, with Python tags named as such."""
    mark = getattr(err, 'problem_mark', None)
    where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
    problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
    tag = re.search(r"tag '([^']+)'", problem)
    if tag and 'python/' in tag.group(1):
        problem = (f'the Python tag {tag.group(1).replace("tag:yaml.org,2002:", "!!")} is not allowed '
                   '(options are read as data and never run); remove it')
    return where, problem


def load_option_file(path: str | Path) -> dict:
    """Read an option file as a mapping; a missing, unreadable or malformed file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise SegSRError(f'option file {path} is a folder; pass a YAML file inside it with -opt')
    if not path.is_file():
        raise SegSRError(f'option file {path} does not exist; pass an existing YAML file with -opt')
    try:
        text = path.read_bytes().decode('utf-8-sig')
    except UnicodeDecodeError as err:
        raise SegSRError(f'option file {path} is not UTF-8 text (byte {err.start} cannot be decoded); '
                         'save it as UTF-8') from None
    except OSError as err:
        raise SegSRError(f'option file {path} cannot be read ({err.strerror}); check its permissions') from None
    try:
        opt = yaml.load(text, Loader=OptionLoader)
    except yaml.YAMLError as err:
        where, problem = _describe(err)
        raise SegSRError(f'option file {path} is not valid YAML{where}: {problem}') from None
    if not isinstance(opt, dict):
        raise SegSRError(f'option file {path} must hold a mapping of options, not {type(opt).__name__}')
    return opt


def parse_option_value(text: str, source: str) -> object:
    """One ``--force_yml`` value as a YAML scalar or flow collection (``-5``, ``1e-4``, ``[1, 2]``, ``~``).

    basicsr's spelling ``None`` also means null, so its command lines keep working.
    """
    if text.strip().lower() == 'none':
        return None
    try:
        return yaml.load(text, Loader=OptionLoader)
    except yaml.YAMLError as err:
        _, problem = _describe(err)
        raise SegSRError(f'{source}: the value is not valid YAML: {problem}') from None
