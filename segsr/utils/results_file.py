"""Reading the results JSON that segsr/test.py writes, as scripts that compare runs do: every file checked.

A results file may come from anywhere (another machine, a hand edit, a cut-short copy). Reading it checks,
before any value is used, that it is UTF-8 JSON of a bounded size and depth, and that each field the
scripts read has the type segsr/test.py writes; any failure is one line naming the file and the field.
"""

import json
import math
from pathlib import Path

from segsr.utils.errors import SegSRError
from segsr.utils.limits import NESTING_DEPTH, SOURCE_FILE_BYTES, LimitExceeded

RESULTS_FIX = 'give results written by segsr/test.py'


def _depth(value: object) -> int:
    """How deeply lists and mappings nest in ``value`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in children)
    return deepest


def read_json_file(path: Path, fix: str) -> object:
    """The JSON value in ``path``; a file too large, not UTF-8, malformed or nested too deeply is one line."""
    try:
        SOURCE_FILE_BYTES.check(path.stat().st_size, f'{path}')
        data = path.read_bytes()
    except OSError as err:
        raise SegSRError(f'{path} cannot be read ({err.strerror or err}); {fix}') from None
    except LimitExceeded as err:
        raise SegSRError(f'{err}; {fix}') from None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        raise SegSRError(f'{path} is not UTF-8 text (byte {err.start} cannot be decoded); {fix}') from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SegSRError(f'{path} is not a readable JSON file (line {err.lineno}, column {err.colno}: {err.msg}); '
                         f'{fix}') from None
    except RecursionError:
        raise SegSRError(f'{path} nests lists or objects too deeply to read; {fix}') from None
    try:
        NESTING_DEPTH.check(_depth(value), f'the nesting of lists and objects in {path}')
    except LimitExceeded as err:
        raise SegSRError(f'{err}; {fix}') from None
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FIELDS = {
    'name': (lambda v: isinstance(v, str), 'a string'),
    'network': (lambda v: isinstance(v, str) and v != '', 'a network type'),
    'scale': (lambda v: _is_int(v) and v >= 1, 'a positive whole number'),
    'dataset': (lambda v: isinstance(v, str), 'a string'),
    'protocol': (lambda v: isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get('text', ''), str)),
                 'a string or a mapping with a text'),
    'params': (lambda v: _is_int(v) and v >= 0, 'a count'),
    'trainable_params': (lambda v: _is_int(v) and v >= 0, 'a count'),
    'average': (lambda v: isinstance(v, dict) and _is_number(v.get('psnr')) and math.isfinite(v['psnr'])
                and all(_is_number(x) for x in v.values()), 'a mapping of metric numbers with a finite psnr'),
}


def _image_problem(rows: object) -> str | None:
    if not isinstance(rows, list):
        return 'images: expected a list of per-image rows'
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get('image'), str):
            return f'images[{index}]: expected a mapping with an image name'
        numbers = {key: value for key, value in row.items() if key not in ('image', 'class')}
        if not all(_is_number(value) for value in numbers.values()):
            return f'images[{index}]: metric values must be numbers'
        if not isinstance(row.get('class', ''), str):
            return f'images[{index}].class: expected a string'
    names = [row['image'] for row in rows]
    if len(set(names)) != len(names):
        return 'images: an image is listed twice'
    return None


def read_results(path: Path) -> dict:
    """One results file as segsr/test.py writes it, every field the comparison reads checked."""
    result = read_json_file(path, RESULTS_FIX)
    if not isinstance(result, dict):
        raise SegSRError(f'{path} holds a JSON {type(result).__name__}, not a results object; {RESULTS_FIX}')
    missing = [key for key in FIELDS if key not in result]
    if missing:
        raise SegSRError(f'{path} lacks {", ".join(missing)}; {RESULTS_FIX}')
    wrong = [f'{key}: expected {kind}' for key, (fits, kind) in FIELDS.items() if not fits(result[key])]
    if result.get('images') is not None and (problem := _image_problem(result['images'])):
        wrong.append(problem)
    if wrong:
        raise SegSRError(f'{path} has wrong values ({"; ".join(wrong)}); {RESULTS_FIX}')
    return result
