"""Tiled inference throughput (tiles/s) and peak memory for large synthetic GeoTIFF scenes.

Each scene runs in a fresh process, so its peak resident memory (and peak CUDA memory) is its own.
The scenes show how the peak follows the tile size, not the scene: wide and tall scenes of four
times the area of a square one stay within the same budget.

    python scripts/benchmark_infer.py                 # CPU, and CUDA when present
    python scripts/benchmark_infer.py --sizes 2048x2048 4096x4096 --tiles 256 --devices cpu
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import rasterio  # noqa: E402
import torch  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and registration)
from segsr.benchmarking.harness import fresh_process_pool  # noqa: E402
from segsr.benchmarking.scenes import write_scene  # noqa: E402

SMALL_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 2, 'upscale': 4}


def run_scene(weights: Path, scene: Path, out: Path, tile: int, overlap: int, batch: int, device: str,
              bf16: bool) -> dict:
    """Runs one scene (in a fresh process of its own) and returns its numbers."""
    from segsr.inference.checkpoint import load_network
    from segsr.inference.engine import TileUpscaler
    from segsr.inference.inputs import plan_input
    from segsr.inference.runner import RadiometryOptions, TilingOptions, upscale_files
    from segsr.inference.tiling import count_tiles

    device = torch.device(device)
    network, _ = load_network(weights)
    upscaler = TileUpscaler(network, device, bf16=bf16, guidance=False)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with rasterio.open(scene) as dataset:
        tiles = count_tiles(dataset.height, dataset.width, tile, overlap)
    start = time.perf_counter()
    upscale_files(
        [plan_input(scene, out, guidance=False, overwrite=True)],  # its own scratch output
        upscaler,
        TilingOptions(tile, overlap, batch),
        RadiometryOptions(),
    )
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    result = {
        'tiles': tiles,
        'seconds': seconds,
        'tiles_per_s': tiles / seconds,
        'baseline_rss_mb': baseline_mb,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'peak_cuda_mb': torch.cuda.max_memory_allocated(device) / 2**20 if device.type == 'cuda' else None,
    }
    return result


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split('x'))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes', nargs='+', default=['1024x1024', '2048x2048', '4096x1024', '1024x4096'], help='WIDTHxHEIGHT'
    )
    parser.add_argument('--tiles', type=int, nargs='+', default=[256, 128], help='tile sizes to compare')
    parser.add_argument('--overlap', type=int, default=32)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--devices', nargs='+', default=['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    parser.add_argument('--bf16', action='store_true')
    args = parser.parse_args()

    from basicsr.archs import build_network  # after segsr has patched basicsr

    with tempfile.TemporaryDirectory() as folder, fresh_process_pool() as pool:
        folder = Path(folder)
        weights = folder / 'edsr_x4.pth'
        torch.manual_seed(0)
        torch.save({'params': build_network(SMALL_EDSR).state_dict(), 'network_g': SMALL_EDSR}, weights)
        print(f'network: {SMALL_EDSR}, overlap {args.overlap}, batch {args.batch}, bf16 {args.bf16}')
        print(
            f'{"device":>6} {"LR scene":>10} {"tile":>5} {"tiles":>6} {"seconds":>8} {"tiles/s":>8} '
            f'{"base MB":>8} {"peak MB":>8} {"+MB":>7} {"CUDA MB":>8}'
        )
        for size in args.sizes:
            width, height = parse_size(size)
            scene = folder / f'scene_{width}x{height}.tif'
            write_scene(scene, height, width)
            for device in args.devices:
                for tile in args.tiles:
                    job = pool.submit(run_scene, weights, scene, folder / 'out', tile, args.overlap, args.batch,
                                      device, args.bf16)
                    try:
                        r = job.result()
                    except Exception as error:  # one failed scene (e.g. out of memory) does not stop the others
                        print(f'{device:>6} {size:>10} {tile:>5} failed: {type(error).__name__}: {error}')
                        continue
                    cuda = f'{r["peak_cuda_mb"]:8.0f}' if r['peak_cuda_mb'] is not None else f'{"-":>8}'
                    print(
                        f'{device:>6} {size:>10} {tile:>5} {r["tiles"]:>6} {r["seconds"]:8.1f} '
                        f'{r["tiles_per_s"]:8.2f} {r["baseline_rss_mb"]:8.0f} {r["peak_rss_mb"]:8.0f} '
                        f'{r["peak_rss_mb"] - r["baseline_rss_mb"]:7.0f} {cuda}',
                        flush=True,
                    )
            scene.unlink()


if __name__ == '__main__':
    main()
