"""Option files and ``--force_yml`` values read as data: a safe YAML loader, never one that builds Python objects.

basicsr's ``ordered_yaml`` uses PyYAML's full loader, under which a ``!!python/object/apply`` tag runs code.
This loader builds only plain mappings (ordered, as every dict is), lists and scalars, and also reads
exponent floats without a dot (``1e-4``), which YAML 1.1 would leave a string. A key given twice in one
mapping is an error (YAML's last-one-wins would hide a mistake), and the document is measured with its
aliases expanded before anything is built, so an alias bomb or a self-referencing anchor never grows.
"""

import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from segsr.utils.errors import SegSRError
from segsr.utils.limits import NESTING_DEPTH, YAML_NODES, LimitExceeded

EXPONENT_FLOAT = re.compile(r'^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$')
MERGE_TAG = 'tag:yaml.org,2002:merge'
PYTHON_TAG = 'tag:yaml.org,2002:python/'


class OptionError(yaml.YAMLError):
    """A well-formed document that options may not be: a repeated key, or one too large or too deep once expanded."""

    def __init__(self, problem: str, mark=None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, SequenceNode) else []


def check_expansion(root: Node) -> None:
    """Nodes and nesting depth of the document as built (every alias expanded), counted without expanding it,
    and no Python tag anywhere.

    Each node is visited once and its expanded size summed from its children's, so a billion-laughs
    document costs as little to measure as it takes to read.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            depths[key] = 1 + max((depths[id(child)] for child in children), default=0)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise OptionError('an alias refers to a mapping or list that contains it; write the values out',
                              node.start_mark)
        if node.tag.startswith(PYTHON_TAG):  # refused before anything is built, wherever it stands
            raise OptionError(f"tag '{node.tag}'", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    YAML_NODES.check(sizes[id(root)], 'the document with its aliases expanded')
    NESTING_DEPTH.check(depths[id(root)] - 1, 'the nesting of lists and mappings')


class OptionLoader(yaml.SafeLoader):
    """SafeLoader plus exponent floats and the checks above; an unknown tag (every ``!!python/...``) is a
    constructor error."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict:
        if isinstance(node, MappingNode):
            first_lines: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                    continue
                identity = (key_node.tag, key_node.value)
                if identity in first_lines:
                    raise OptionError(f'key "{key_node.value}" is given twice (first at line '
                                      f'{first_lines[identity]}); keep one of them', key_node.start_mark)
                first_lines[identity] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


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
    except OptionError as err:
        where, problem = _describe(err)
        raise SegSRError(f'option file {path}{where}: {problem}') from None
    except yaml.YAMLError as err:
        where, problem = _describe(err)
        raise SegSRError(f'option file {path} is not valid YAML{where}: {problem}') from None
    except LimitExceeded as err:
        raise SegSRError(f'option file {path}: {err}') from None
    except RecursionError:
        raise SegSRError(f'option file {path} nests lists or mappings too deeply to read; '
                         f'at most {NESTING_DEPTH.value()} levels are allowed') from None
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
    except OptionError as err:
        raise SegSRError(f'{source}: {_describe(err)[1]}') from None
    except yaml.YAMLError as err:
        _, problem = _describe(err)
        raise SegSRError(f'{source}: the value is not valid YAML: {problem}') from None
    except LimitExceeded as err:
        raise SegSRError(f'{source}: {err}') from None
    except RecursionError:
        raise SegSRError(f'{source}: the value nests lists or mappings too deeply') from None
