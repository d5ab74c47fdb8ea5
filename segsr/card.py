"""segsr-card: a weights file's model card as Markdown (a model folder's README) or as a STAC MLM Item.

    segsr-card experiments/NAME/models/net_g_latest.safetensors > README.md
    segsr-card net_g_latest.safetensors --stac model.json
"""

import argparse
import json
import sys
from pathlib import Path

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_open
from segsr.weights.card_formats import card_markdown, read_card, stac_item


def write_card(weights: str | Path, stac: str | Path | None = None) -> str:
    """The card of ``weights`` as Markdown; with ``stac``, also its STAC Item written there (atomically)."""
    card = read_card(weights)
    if stac is not None:
        with atomic_open(stac) as handle:
            handle.write((json.dumps(stac_item(card, weights), indent=2) + '\n').encode())
    return card_markdown(card)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('weights', help='weights file (.safetensors or .pth) written by segsr')
    parser.add_argument('--stac', metavar='OUT.json', help='also write a STAC Item with the MLM extension')
    args = parser.parse_args(argv)
    try:
        markdown = write_card(args.weights, args.stac)
    except SegSRError as error:
        sys.exit(f'error: {error}')
    sys.stdout.write(markdown)


if __name__ == '__main__':
    main()
