"""Regenerate the split lists shipped in segsr/data/splits from each dataset's complete file list."""

import argparse
import sys

from segsr.data.prepare.specs import DATASETS, SHIPPED_SEED
from segsr.data.prepare.splits import make_split, read_split, shipped_split_dir, write_split


def shipped_splits() -> dict[tuple[str, str], dict[str, list[str]]]:
    """Every shipped split, as regenerated now: {(dataset, split name): {part: names}}."""
    return {
        (spec.name, rule.name): make_split({k: list(v) for k, v in spec.canonical_names.items()}, rule, SHIPPED_SEED)
        for spec in DATASETS.values() if spec.shipped for rule in spec.splits
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--check', action='store_true', help='only report whether the shipped files are current')
    args = parser.parse_args(argv)
    stale = []
    for (dataset, split_name), split in shipped_splits().items():
        folder = shipped_split_dir(dataset, split_name)
        if args.check:
            if not folder.is_dir() or read_split(folder) != split:
                stale.append(folder)
        else:
            write_split(folder, split)
            print(f'{folder}: ' + ', '.join(f'{len(names)} {part}' for part, names in split.items()))
    for folder in stale:
        print(f'stale: {folder} (run scripts/make_splits.py)', file=sys.stderr)
    return 1 if stale else 0


if __name__ == '__main__':
    sys.exit(main())
