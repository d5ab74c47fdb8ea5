"""Result tables: printed for people, written as CSV and JSON for scripts."""

import csv
import io
import json
import os

from segsr.utils.files import atomic_write_bytes


def metric_columns(rows: list[dict]) -> list[str]:
    """The per-image columns that hold numbers to average (all but the image name and class)."""
    return [key for key in rows[0] if key not in ('image', 'class')]


def average_rows(rows: list[dict], metrics: list[str]) -> dict:
    return {metric: sum(row[metric] for row in rows) / len(rows) for metric in metrics}


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


def write_csv(path: str | os.PathLike, rows: list[dict], columns: list[str]) -> None:
    buffer = io.StringIO(newline='')
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode('utf-8'))


def write_json(path: str | os.PathLike, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + '\n').encode('utf-8'))
