"""CPU speed of tiled inference through onnxruntime against torch, for the demo HAT and SEGSR.

Each network gets random weights (speed does not depend on them), is exported with segsr-export's
exporter, then super-resolves one synthetic LR scene with segsr's tiled engine, once per runner,
after one warm-up tile. Both runners use the same number of threads. Numbers depend on the machine
and on what else runs on it.

    python scripts/benchmark_onnx.py                     # 512x512 LR, tile 256, overlap 32
    python scripts/benchmark_onnx.py --size 1024 --threads 8 --networks HAT
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and registration)
from segsr.clip.tiny import write_tiny_clip_checkpoint  # noqa: E402
from segsr.export import export_onnx, metadata, psnr, size_multiple  # noqa: E402
from segsr.inference.execution.engine import TileUpscaler  # noqa: E402
from segsr.inference.execution.onnx_runner import OnnxTileUpscaler  # noqa: E402
from segsr.inference.execution.tiling import upscale_tiled  # noqa: E402
from segsr.nn.info import describe  # noqa: E402
from segsr.options.safe_yaml import load_option_file  # noqa: E402
from segsr.weights.network import load_network  # noqa: E402

OPTIONS = Path(__file__).resolve().parents[1] / 'options' / 'train'
DEMO_OPTIONS = {'HAT': 'demo_HAT_SRx4.yml', 'SEGSR': 'demo_SEGSR_SRx4.yml'}


def demo_checkpoint(name: str, folder: Path) -> Path:
    """The demo network's options with random weights; the demo CLIP is written here, not read from datasets/."""
    options = load_option_file(OPTIONS / DEMO_OPTIONS[name])['network_g']
    if 'sfem' in options:
        options['sfem']['pretrained'] = str(write_tiny_clip_checkpoint(folder / 'tiny_clip.pt'))
    from basicsr.archs import build_network

    torch.manual_seed(0)
    network = build_network(dict(options))
    path = folder / f'{name}.pth'
    torch.save({'params_ema': network.state_dict(), 'network_g': options}, path)
    return path


def upscale_scene(runner, scene: np.ndarray, tile: int, overlap: int) -> tuple[np.ndarray, float]:
    """The scene through the tiled engine; returns the output and the seconds it took."""
    channels, height, width = scene.shape
    output = np.empty((channels, height * runner.scale, width * runner.scale), np.float32)
    start = time.perf_counter()
    blocks = upscale_tiled(lambda r0, r1, c0, c1: scene[:, r0:r1, c0:c1], height, width, runner,
                           scale=runner.scale, tile=tile, overlap=overlap)
    for row, col, block in blocks:
        output[:, row:row + block.shape[1], col:col + block.shape[2]] = block[:channels]
    return output, time.perf_counter() - start


def benchmark(name: str, folder: Path, scene: np.ndarray, tile: int, overlap: int, threads: int) -> dict:
    weights = demo_checkpoint(name, folder)
    network, options = load_network(weights)
    channels, multiple = describe(network).in_chans, size_multiple(network)
    onnx_path = folder / f'{name}.onnx'
    start = time.perf_counter()
    export_onnx(network, onnx_path, channels, multiple, metadata(network, options['type'], channels, multiple))
    export_seconds = time.perf_counter() - start
    runners = {'torch': TileUpscaler(network, channels, torch.device('cpu'), bf16=False, guidance=False),
               'onnxruntime': OnnxTileUpscaler(onnx_path, threads=threads)}
    warm_up = np.ascontiguousarray(scene[None, :, : tile + 2 * overlap, : tile + 2 * overlap])
    outputs, seconds = {}, {}
    for kind, runner in runners.items():
        runner(warm_up)
        outputs[kind], seconds[kind] = upscale_scene(runner, scene, tile, overlap)
    return {'network': name, 'export_s': export_seconds, 'torch_s': seconds['torch'],
            'onnxruntime_s': seconds['onnxruntime'], 'speedup': seconds['torch'] / seconds['onnxruntime'],
            'psnr_db': psnr(outputs['onnxruntime'], outputs['torch'])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=512, help='LR scene side in pixels')
    parser.add_argument('--tile', type=int, default=256)
    parser.add_argument('--overlap', type=int, default=32)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(), help='CPU threads for both runners')
    parser.add_argument('--networks', nargs='+', choices=sorted(DEMO_OPTIONS), default=sorted(DEMO_OPTIONS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    y, x = np.mgrid[0:args.size, 0:args.size] / args.size
    scene = np.stack([0.5 + 0.4 * np.sin(40 * x * (c + 1)) * np.cos(30 * y) for c in range(3)]).astype(np.float32)
    print(f'LR scene {args.size}x{args.size}, tile {args.tile}, overlap {args.overlap}, {args.threads} CPU threads')
    print(f'{"network":8} {"export s":>9} {"torch s":>8} {"onnxrt s":>9} {"speed-up":>9} {"PSNR dB":>8}')
    with tempfile.TemporaryDirectory() as folder:
        for name in args.networks:
            row = benchmark(name, Path(folder), scene, args.tile, args.overlap, args.threads)
            print(f'{row["network"]:8} {row["export_s"]:9.1f} {row["torch_s"]:8.1f} {row["onnxruntime_s"]:9.1f} '
                  f'{row["speedup"]:8.2f}x {row["psnr_db"]:8.1f}')


if __name__ == '__main__':
    main()
