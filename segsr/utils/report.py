"""Result tables: printed for people, written as CSV and JSON for scripts."""

import csv
import json
import os
from pathlib import Path


def format_table(rows: list[dict], columns: list[str], title: str = '') -> str:
    """A fixed-width text table; floats get four decimals."""

    def cell(value: object) -> str:
        return f'{value:.4f}' if isinstance(value, float) else str(value)

    cells = [[cell(row.get(column, '')) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    rule = '  '.join('-' * width for width in widths)
    lines = [title] if title else []
    lines += ['  '.join(column.ljust(width) for column, width in zip(columns, widths, strict=True)), rule]
    lines += ['  '.join(value.ljust(width) for value, width in zip(line, widths, strict=True)) for line in cells]
    return '\n'.join(lines)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(path: str | os.PathLike, rows: list[dict], columns: list[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    with tmp.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, json.dumps(payload, indent=2) + '\n')
