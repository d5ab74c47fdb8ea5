"""Peak memory and speed of segsr-infer's tiled inference of one generated GeoTIFF scene.

The network is an option file's ``network_g`` with random weights (CLIP too: nothing is downloaded); the
scene is a uint8 RGB GeoTIFF of SIZE x SIZE LR pixels. The scene goes through ``segsr/infer.py``'s own
command line in this process, so the CUDA allocator's peak (``torch.cuda.max_memory_allocated``) is
that of the whole inference. One JSON object is printed and, with ``--json``, written.

    python scripts/tiled_inference_peak.py --opt options/train/SEGSR_SRx4_UCMerced.yml --size 2048 --json t.json
"""

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

if __name__ == '__main__':  # run as a script: import this checkout's package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import rasterio  # noqa: E402
import torch  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and registration)
from segsr import infer  # noqa: E402
from segsr.benchmarking.scenes import write_scene  # noqa: E402
from segsr.inference.execution.tiling import count_tiles  # noqa: E402
from segsr.options.safe_yaml import load_option_file  # noqa: E402
from segsr.utils.files import atomic_write_bytes  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--opt', required=True, help='option file whose network_g is run (random weights)')
    parser.add_argument('--size', type=int, default=2048, help='LR scene side in pixels')
    parser.add_argument('--tile', type=int, default=256)
    parser.add_argument('--overlap', type=int, default=32)
    parser.add_argument('--batch', type=int, default=1, help='tiles per network call')
    parser.add_argument('--bf16', action='store_true')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', default=None, help='write the result here')
    return parser.parse_args(argv)


def random_network_options(path: Path) -> dict:
    """``network_g`` of an option file with CLIP weights left random and no text initialisation."""
    network = load_option_file(path)['network_g']
    if 'sfem' in network:
        network['sfem']['pretrained'] = None
        network.get('slm', {}).pop('text_init', None)
    return network


def write_checkpoint(network_options: dict, path: Path) -> None:
    from basicsr.archs import build_network

    torch.manual_seed(0)
    torch.save({'params': build_network(dict(network_options)).state_dict(), 'network_g': network_options}, path)


def measure(args: argparse.Namespace, folder: Path) -> dict:
    network_options = random_network_options(Path(args.opt))
    weights, scene, output = folder / 'net_g.pth', folder / 'scene.tif', folder / 'out'
    write_checkpoint(network_options, weights)
    write_scene(scene, args.size, args.size)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    infer.main(['--weights', str(weights), '--input', str(scene), '--output', str(output), '--tile', str(args.tile),
                '--overlap', str(args.overlap), '--batch', str(args.batch), '--device', args.device,
                *(['--bf16'] if args.bf16 else [])])
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    with rasterio.open(output / scene.name) as result:
        output_size = [result.height, result.width]
    tiles = count_tiles(args.size, args.size, args.tile, args.overlap)
    return {
        'network': network_options['type'], 'opt': args.opt, 'device': args.device,
        'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'torch': torch.__version__, 'scene': [args.size, args.size], 'output': output_size, 'tile': args.tile,
        'overlap': args.overlap, 'batch': args.batch, 'bf16': args.bf16, 'tiles': tiles, 'seconds': seconds,
        'tiles_per_s': tiles / seconds,
        'peak_cuda_bytes': torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None,
        'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        sys.exit(f'error: --device {args.device}: no CUDA GPU is visible here; pass --device cpu')
    with tempfile.TemporaryDirectory(prefix='segsr_tiled_') as folder:
        result = measure(args, Path(folder))
    print(json.dumps(result))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(result, indent=2).encode())
    return result


if __name__ == '__main__':
    main()
