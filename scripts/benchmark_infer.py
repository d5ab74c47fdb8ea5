"""Tiled inference throughput (tiles/s) and peak memory for large synthetic GeoTIFF scenes, and folder runs
over many processes.

Each scene runs in a fresh process, so its peak resident memory (and peak CUDA memory) is its own.
The scenes show how the peak follows the tile size, not the scene: wide and tall scenes of four
times the area of a square one stay within the same budget.

    python scripts/benchmark_infer.py                 # CPU, and CUDA when present
    python scripts/benchmark_infer.py --sizes 2048x2048 4096x4096 --tiles 256 --devices cpu

``--folder N`` instead runs segsr-infer on a folder of N small rasters, as a user would: one process with
``--threads`` threads against ``--ranks`` torchrun processes of one thread each, and one process with and
without its reader/writer threads (``--no-io-threads``). Files/s and MP/s (LR input pixels) come from the run
manifest (network loaded to last file written); wall seconds include start-up.

    python scripts/benchmark_infer.py --folder 64 --folder-size 128 --threads 2 --ranks 2
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == '__main__':  # run as a script: import this checkout's package
    sys.path[0] = str(ROOT)

import rasterio  # noqa: E402
import torch  # noqa: E402

import segsr  # noqa: E402  (basicsr compat and registration)
from segsr.benchmarking.harness import fresh_process_pool  # noqa: E402
from segsr.benchmarking.scenes import write_scene  # noqa: E402

SMALL_EDSR = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 2, 'upscale': 4}


def run_scene(weights: Path, scene: Path, out: Path, tile: int, overlap: int, batch: int, device: str,
              bf16: bool) -> dict:
    """Runs one scene (in a fresh process of its own) and returns its numbers."""
    from segsr.inference.execution.tiling import count_tiles

    device = torch.device(device)
    upscaler = segsr.load(weights, device=str(device), bf16=bf16)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    with rasterio.open(scene) as dataset:
        tiles = count_tiles(dataset.height, dataset.width, tile, overlap)
    start = time.perf_counter()
    upscaler.upscale_file(scene, out / scene.name, tile=tile, overlap=overlap, batch=batch, overwrite=True)
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


def folder_run(weights: Path, folder: Path, out: Path, threads: int, ranks: int | None, io_threads: bool,
               tile: int, overlap: int, device: str = 'cpu', batch: int = 1) -> dict:
    """segsr-infer on ``folder`` as a user runs it: under torchrun with ``ranks`` processes (one is still a
    launched run), or as one plain process when ``ranks`` is None; numbers from its manifest."""
    infer = [str(ROOT / 'segsr' / 'infer.py'), '--weights', str(weights), '--input', str(folder), '--output',
             str(out), '--tile', str(tile), '--overlap', str(overlap), '--batch', str(batch),
             '--device', device,
             *([] if io_threads else ['--no-io-threads'])]
    launcher = ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={ranks}'] if ranks else []
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'PYTHONPATH': str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *launcher, *infer], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f'segsr-infer failed: {done.stderr[-2000:]}')
    wall = time.perf_counter() - start
    summary = json.loads((out / 'segsr-manifest.json').read_text())['summary']
    return {'files': summary['done'], 'seconds': summary['elapsed_s'], 'wall': wall,
            'files_per_s': summary['done'] / summary['elapsed_s'], 'mp_per_s': summary['megapixels_per_s']}


def compare_folder_runs(args: argparse.Namespace, weights: Path, folder: Path) -> None:
    (folder / 'in').mkdir()
    for index in range(args.folder):
        write_scene(folder / 'in' / f'scene_{index:03d}.tif', args.folder_size, args.folder_size)
    device = args.devices[0]
    processes = f'{args.ranks} processes' if args.ranks > 1 else '1 process'
    known = {'threads': (f'1 process x {args.threads} threads', args.threads, None, True),
             'ranks': (f'{processes} x 1 thread (torchrun)', 1, args.ranks, True),
             'io': ('1 process x 1 thread, reader/writer threads', 1, None, True),
             'no-io': ('1 process x 1 thread, no reader/writer threads', 1, None, False)}
    runs = [known[name] for name in args.runs]
    rows = []
    print(f'{args.folder} rasters of {args.folder_size}x{args.folder_size} px, tile {args.tile_folder}, overlap '
          f'{min(args.overlap, args.tile_folder)}, batch {args.batch}; '
          f'load average before: {os.getloadavg()[0]:.2f}')
    print(f'{"run":<48} {"files":>5} {"run s":>7} {"wall s":>7} {"files/s":>8} {"MP/s":>7}')
    for repeat in range(args.repeats):
        for number, (name, threads, ranks, io_threads) in enumerate(runs):
            r = folder_run(weights, folder / 'in', folder / f'out_{repeat}_{number}', threads, ranks, io_threads,
                           args.tile_folder, min(args.overlap, args.tile_folder), device, args.batch)
            rows.append({'run': name, 'device': device, **r})
            print(f'{name:<48} {r["files"]:>5} {r["seconds"]:7.1f} {r["wall"]:7.1f} {r["files_per_s"]:8.2f} '
                  f'{r["mp_per_s"]:7.3f}', flush=True)
    print(f'load average after: {os.getloadavg()[0]:.2f}')
    if args.json:
        Path(args.json).write_text(json.dumps({'rasters': args.folder, 'side': args.folder_size, 'runs': rows}))


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split('x'))
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes', nargs='+', default=['1024x1024', '2048x2048', '4096x1024', '1024x4096'], help='WIDTHxHEIGHT'
    )
    parser.add_argument('--tiles', type=int, nargs='+', default=[256, 128], help='tile sizes to compare')
    parser.add_argument('--overlap', type=int, default=32)
    parser.add_argument('--batch', type=int, default=4, help='tiles per network call')
    parser.add_argument('--devices', nargs='+', default=['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu'])
    parser.add_argument('--bf16', action='store_true')
    parser.add_argument('--folder', type=int, help='instead: segsr-infer runs over a folder of this many rasters')
    parser.add_argument('--folder-size', type=int, default=128, help='LR side of each raster of --folder')
    parser.add_argument('--tile-folder', type=int, default=64, help='--tile of the --folder runs')
    parser.add_argument('--threads', type=int, default=2, help='threads of the one-process --folder run')
    parser.add_argument('--ranks', type=int, default=2, help='torchrun processes (1 thread each) of --folder')
    parser.add_argument('--repeats', type=int, default=1, help='rounds of the --folder runs')
    parser.add_argument('--runs', nargs='+', choices=('threads', 'ranks', 'io', 'no-io'),
                        default=['threads', 'ranks', 'io', 'no-io'], help='which --folder runs, in this order')
    parser.add_argument('--json', help='also write the --folder results to this JSON file')
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()

    from basicsr.archs import build_network  # after segsr has patched basicsr

    with tempfile.TemporaryDirectory() as folder, fresh_process_pool() as pool:
        folder = Path(folder)
        weights = folder / 'edsr_x4.pth'
        torch.manual_seed(0)
        torch.save({'params': build_network(SMALL_EDSR).state_dict(), 'network_g': SMALL_EDSR}, weights)
        if args.folder:
            print(f'network: {SMALL_EDSR}')
            return compare_folder_runs(args, weights, folder)
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
