"""Convert a checkpoint of the published SeG-SR code into a segsr SEGSR checkpoint with the same outputs.

    python scripts/convert_official_segsr.py --input segsr-uc-x4.pth \
        --opt ~/SeG-SR/options/train/train_SEGSR_SRx4_UCMerced.yml --official-repo ~/SeG-SR --output segsr_uc_x4.pth

``--opt`` is the published option file the checkpoint was trained (or tested) with: its flat
``network_g`` becomes segsr's, and its ``manual_seed`` rebuilds the per-stage prompts, which the
published checkpoints do not hold, from the user's checkout of the published code (``--official-repo``,
run by ``--official-python``; it needs that code's dependencies and ``clip/ViT-B-16.pt``). The output
holds ``params``/``params_ema`` (whichever the input has) and ``network_g`` with every published
behaviour on (docs/segsr.md, "Published checkpoints").
"""

import argparse
import sys
from copy import deepcopy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import segsr  # noqa: E402,F401  (patches and fills basicsr's registries)
from segsr.convert.official_prompts import published_prompts  # noqa: E402
from segsr.convert.official_segsr import (  # noqa: E402
    check_clip_model,
    check_published_network,
    convert_state_dict,
    network_options,
)
from segsr.options.safe_yaml import load_option_file  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.weights.files import atomic_torch_save, load_checkpoint, load_state_dict_checked  # noqa: E402

# isort: split
# basicsr only after segsr has patched it for current torchvision
from basicsr.archs import build_network  # noqa: E402

WEIGHT_SETS = ('params', 'params_ema')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--input', required=True, help='checkpoint of the published code (.pth)')
    parser.add_argument('--opt', required=True, help='the published option file of that checkpoint')
    parser.add_argument('--output', required=True, help='segsr checkpoint to write')
    parser.add_argument('--official-repo', required=True, help='checkout of the published SeG-SR repository')
    parser.add_argument('--official-python', default=sys.executable,
                        help='Python that runs the published code (with its peft and einops)')
    parser.add_argument('--clip-model', default='ViT-B-16', help='open_clip config of the checkpoint\'s CLIP tower')
    return parser.parse_args(argv)


def weight_sets(checkpoint: dict, path: Path) -> dict[str, dict]:
    """``params``/``params_ema`` of a basicsr checkpoint; a bare state dict counts as ``params``."""
    found = {key: checkpoint[key] for key in WEIGHT_SETS if isinstance(checkpoint.get(key), dict)}
    if not found and 'text_global' in checkpoint:
        found = {'params': checkpoint}
    if not found:
        raise SegSRError(f'{path} holds neither params/params_ema nor a published SeG-SR state dict; '
                         'give the published checkpoint')
    return found


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    source, output = Path(args.input), Path(args.output)
    if output.resolve() == source.resolve():
        raise SegSRError(f'--output {output} is the input checkpoint; write the converted one to another file')
    options = load_option_file(args.opt)
    if not isinstance(options.get('network_g'), dict) or not isinstance(options.get('manual_seed'), int):
        raise SegSRError(f'{args.opt} needs network_g and an integer manual_seed (the published files have both); '
                         'give the published option file of this checkpoint')
    published = dict(options['network_g'])
    check_published_network(published)  # before the published code runs
    states = weight_sets(load_checkpoint(source), source)
    first = next(iter(states.values()))
    check_clip_model(first, args.clip_model)

    prompts = published_prompts(args.official_repo, published, options['manual_seed'], args.official_python)
    network_g = network_options(published, args.clip_model, num_local=prompts.shape[1])
    network = build_network(deepcopy(network_g))
    converted, unused = {}, []
    for key, state in states.items():
        converted[key], unused = convert_state_dict(state, prompts)
        load_state_dict_checked(network, converted[key], strict=True, source=f'{source} ({key}, converted)',
                                fix='the checkpoint does not match its option file: give the --opt it was trained with')
    atomic_torch_save({**converted, 'network_g': network_g}, output)
    print(f'wrote {output}: {", ".join(converted)} with {len(converted[key])} tensors each; '
          f'{len(unused)} tensors the published forward never uses left out; prompts rebuilt under seed '
          f'{options["manual_seed"]}')
    return output


if __name__ == '__main__':
    try:
        main()
    except SegSRError as err:
        sys.exit(f'error: {err}')
