"""Export a trained network to ONNX, with dynamic batch, height and width, and check it against torch.

    segsr-export --weights net_g.pth --output model.onnx

The graph is the network after its LoRA adapters are folded into the frozen CLIP weights (the CLIP
tower is part of the graph). It takes LR heights and widths that are multiples of
:func:`size_multiple` (HAT's window size, for instance); ``segsr-infer --onnx`` pads tiles to that
multiple and crops the result, as the network itself does in torch.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

import segsr  # noqa: F401  (basicsr compat and arch registration first)
from segsr.nn.info import describe
from segsr.utils.errors import SegSRError
from segsr.utils.files import OutputExistsError, atomic_path, write_failure
from segsr.utils.optional import import_optional
from segsr.weights.hub import resolve_weights
from segsr.weights.network import load_network

INPUT_NAME, OUTPUT_NAME = 'lr', 'sr'
METADATA_PREFIX = 'segsr.'
MIN_PSNR_DB = 50.0
EXAMPLE_BLOCKS = (2, 3)  # example height and width in multiples: distinct, so neither is specialised


def size_multiple(network: nn.Module) -> int:
    """LR sizes the exported graph takes: multiples of the network's padding and, with a CLIP
    encoder, of what makes the CLIP input a whole number of patches without rounding."""
    multiple = describe(network).pad_multiple
    sfem = getattr(network, 'sfem', None)
    if sfem is not None:
        multiple = math.lcm(multiple, sfem.patch_size // math.gcd(sfem.patch_size, sfem.scale))
    return multiple


def metadata(network: nn.Module, network_type: str, channels: int, multiple: int) -> dict[str, str]:
    """What ``segsr-infer --onnx`` needs to feed the graph, stored in the ONNX file."""
    values = {'network': network_type, 'scale': describe(network).scale, 'in_channels': channels,
              'size_multiple': multiple}
    return {METADATA_PREFIX + key: str(value) for key, value in values.items()}


def export_onnx(network: nn.Module, output: Path, channels: int, multiple: int, properties: dict[str, str],
                published: Path | None = None) -> None:
    """Write ``output``: torch.export's graph (dynamo exporter), sizes symbolic in blocks of ``multiple``.
    ``published``: the name ``output`` (a temporary file) will take, which a write error names."""
    onnx = import_optional('onnx', 'segsr-export')
    import_optional('onnxscript', 'segsr-export')  # torch's dynamo exporter translates through it
    batch = torch.export.Dim('batch', min=1, max=1024)
    height = multiple * torch.export.Dim('height_blocks', min=1, max=16384 // multiple)
    width = multiple * torch.export.Dim('width_blocks', min=1, max=16384 // multiple)
    example = torch.rand(2, channels, *(multiple * blocks for blocks in EXAMPLE_BLOCKS))
    try:
        with torch.no_grad():
            program = torch.onnx.export(network, (example,), dynamo=True, verbose=False, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME],
                                        dynamic_shapes={'x': {0: batch, 2: height, 3: width}})
    except torch.onnx.errors.OnnxExporterError as error:
        summary = str(error).strip().splitlines()[0]
        raise SegSRError(f'torch cannot export {properties[METADATA_PREFIX + "network"]} to ONNX ({summary}); '
                         'HAT, SEGSR and the Guided networks export (docs/interop.md)') from None
    model = program.model_proto
    for key, value in properties.items():
        model.metadata_props.add(key=key, value=value)
    try:
        onnx.save(model, str(output))
    except (OSError, ValueError) as error:  # a full disk; onnx reports some write failures as ValueError
        raise write_failure(published or output, error, 'ONNX graph', 'free space or export to another disk') from None


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of one output against the other, on the [0, 1] scale of the images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def compare_with_torch(network: nn.Module, onnx_path: Path, channels: int, multiple: int, seed: int = 0) -> float:
    """PSNR between torch and onnxruntime on a random input of a size the export did not see."""
    onnxruntime = import_optional('onnxruntime', 'segsr-export')
    generator = torch.Generator().manual_seed(seed)
    lr = torch.rand(1, channels, multiple * 3, multiple * 2, generator=generator)
    with torch.no_grad():
        expected = network(lr).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    return psnr(session.run(None, {INPUT_NAME: lr.numpy()})[0], expected)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True,
                        help='weights (.safetensors or .pth) with params_ema/params and network_g: a path, a '
                        '$SEGSR_CATALOGUE name, hf://owner/repo/file[@revision] or https://...')
    parser.add_argument('--opt', help='options YAML whose network_g builds the network (overrides the checkpoint)')
    parser.add_argument('--output', required=True, help='the .onnx file to write')
    parser.add_argument('--overwrite', action='store_true', help='replace --output if it exists')
    return parser


def run(args: argparse.Namespace) -> float:
    output = Path(args.output)
    if output.suffix.lower() != '.onnx':
        raise SegSRError(f'--output {output} must end in .onnx')
    if output.is_dir():
        raise SegSRError(f'--output {output} is a folder: pass the path of the .onnx file to write')
    if output.exists() and not args.overwrite:
        raise OutputExistsError(output)
    network, options = load_network(resolve_weights(args.weights).path, args.opt)  # LoRA already folded in
    channels, multiple = describe(network).in_chans, size_multiple(network)
    with atomic_path(output, replace=args.overwrite) as temporary:  # published only once it agrees with torch
        export_onnx(network, temporary, channels, multiple, metadata(network, options['type'], channels, multiple),
                    published=output)
        agreement = compare_with_torch(network, temporary, channels, multiple)
        if not agreement >= MIN_PSNR_DB:  # NaN (non-finite outputs) fails too
            raise SegSRError(f'the ONNX graph differs from torch (PSNR {agreement:.1f} dB < {MIN_PSNR_DB:.0f} dB), '
                             f'so {output} was not written; please report this network configuration')
    return agreement


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        agreement = run(args)
    except SegSRError as error:
        sys.exit(f'error: {error}')
    print(f'{args.output}: onnxruntime matches torch at PSNR {agreement:.1f} dB')


if __name__ == '__main__':
    main()
