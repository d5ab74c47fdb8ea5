"""Walking folder trees that may hold symbolic links, each real folder once, so a link loop ends the walk.

``glob('**')`` of Python 3.11 follows links into folders with no memory of where it has been: a link to a
parent folder makes it run until the path is too long, and two such links make that exponential (two links
in a three-file tree: 182,096 matches after 20 s, and counting). ``Path.rglob`` does not follow such links
at all. The walkers here follow them (a linked folder of images is a common layout), entering each real
folder once, so folder and glob inputs find the same files.
"""

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

GLOB_MAGIC = re.compile(r'[*?[]')


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (through linked folders, each real folder once), as paths under ``root``."""
    seen: set[str] = set()
    for folder, folders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders.sort()
        for name in sorted(files):
            yield Path(folder) / name


def _name_regex(part: str) -> str:
    """One path component of a glob pattern: ``*`` and ``?`` stay inside the component, ``[...]`` is a class."""
    out, i = [], 0
    while i < len(part):
        char, close = part[i], part.find(']', i + 2)
        if char == '*':
            out.append('[^/]*')
        elif char == '?':
            out.append('[^/]')
        elif char == '[' and close != -1:
            inside = part[i + 1:close]
            out.append('[' + ('^' + inside[1:] if inside.startswith('!') else inside) + ']')
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return ''.join(out)


def _pattern_regex(pattern: str) -> re.Pattern:
    """A relative glob pattern as a regular expression over ``/``-separated paths; ``**`` spans folders that are
    not hidden, as in ``glob``."""
    parts = pattern.split('/')
    folders, last = '(?:[^/.][^/]*/)*', len(parts) - 1
    body = ''.join((folders + ('[^/.][^/]*' if index == last else '')) if part == '**' else
                   _name_regex(part) + ('/' if index < last else '') for index, part in enumerate(parts))
    return re.compile(body + r'\Z', re.S)


def glob_files(pattern: str, recursive: bool) -> list[str]:
    """``glob.glob``, except that with ``recursive`` a ``**`` walks the tree once per real folder."""
    if not recursive or '**' not in pattern:
        return glob.glob(pattern, recursive=recursive)
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if GLOB_MAGIC.search(part))
    root = Path(*parts[:fixed]) if fixed else Path('.')
    matcher = _pattern_regex('/'.join(parts[fixed:]))
    found = []
    for path in walk_files(root):
        relative = path.relative_to(root).as_posix()
        if matcher.match(relative):
            found.append(str(path))
    return found
