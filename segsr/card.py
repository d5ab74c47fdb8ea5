"""segsr-card: a weights file's model card as Markdown (a model folder's README) or as a STAC MLM Item.

    segsr-card experiments/NAME/models/net_g_latest.safetensors > README.md
    segsr-card net_g_latest.safetensors --stac model.json
    segsr-card net_g_latest.safetensors --folder upload/   # model.safetensors, README.md, model.json
"""

import argparse
import json
import sys
from pathlib import Path

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_open, atomic_write_bytes
from segsr.weights.card_formats import card_markdown, read_card, stac_item
from segsr.weights.files import load_checkpoint
from segsr.weights.safetensors_files import is_safetensors, save_safetensors


def write_card(weights: str | Path, stac: str | Path | None = None) -> str:
    """The card of ``weights`` as Markdown; with ``stac``, also its STAC Item written there (atomically)."""
    card = read_card(weights)
    if stac is not None:
        with atomic_open(stac) as handle:
            handle.write((json.dumps(stac_item(card, weights), indent=2) + '\n').encode())
    return card_markdown(card)


FOLDER_FILES = ('model.safetensors', 'README.md', 'model.json')


def write_model_folder(weights: str | Path, folder: str | Path) -> Path:
    """A folder ready to upload to a model hub: the weights as safetensors, the card as its README and as a STAC
    Item whose asset is the weights beside it. Files already there are never replaced."""
    folder = Path(folder)
    taken = [name for name in FOLDER_FILES if (folder / name).exists()]
    if taken:
        raise SegSRError(f'{folder} already holds {", ".join(taken)}; name an empty or new folder')
    card = read_card(weights)
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / 'model.safetensors'
    if is_safetensors(weights):
        atomic_write_bytes(model, Path(weights).read_bytes(), replace=False)
    else:
        save_safetensors(load_checkpoint(weights), model)
    atomic_write_bytes(folder / 'README.md', card_markdown(card).encode(), replace=False)
    item = json.dumps(stac_item(card, model), indent=2) + '\n'
    atomic_write_bytes(folder / 'model.json', item.encode(), replace=False)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('weights', help='weights file (.safetensors or .pth) written by segsr')
    parser.add_argument('--stac', metavar='OUT.json', help='also write a STAC Item with the MLM extension')
    parser.add_argument('--folder', metavar='OUT/', help='write a folder to upload instead: ' + ', '.join(FOLDER_FILES))
    args = parser.parse_args(argv)
    try:
        if args.folder:
            print(f'wrote {write_model_folder(args.weights, args.folder)}: {", ".join(FOLDER_FILES)}')
            return
        markdown = write_card(args.weights, args.stac)
    except SegSRError as error:
        sys.exit(f'error: {error}')
    sys.stdout.write(markdown)


if __name__ == '__main__':
    main()
