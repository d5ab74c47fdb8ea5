"""Training loss of HAT or SEGSR over many steps in several precision modes, from one start and one data stream.

Every mode starts from the same weights and sees the same batches, so any gap between curves comes
from the mode. "Within noise" is judged against the reference mode rerun with the weights seeded
differently: a mode matches when its curve is no further from the reference than that rerun is.
Distances are the mean absolute gap between moving averages of the curves.

    python scripts/compare_loss_curves.py --device cuda --json curves.json --plot curves.png
    python scripts/compare_loss_curves.py --device cpu --config demo --train-size 32 --modes fp32-explicit bf16

Batches are random crops of the photographs that scikit-image ships, with MATLAB-bicubic LR
(nothing is downloaded); each run is its own process, like scripts/benchmark.py's.
"""

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

if __name__ == '__main__':  # run as a script: the project, not scripts/, comes first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from segsr.benchmarking.harness import (  # noqa: E402
    CONFIGS,
    MODELS,
    MODES,
    build,
    check_device,
    config_options,
    device_name,
    fresh_process_pool,
    performance_for,
)

PHOTOS = ('astronaut', 'coffee', 'rocket', 'motorcycle_left', 'grass', 'gravel', 'brick', 'moon', 'retina')


@dataclass
class Run:
    label: str
    mode: str
    seed: int
    losses: list[float]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--model', default='SEGSR', choices=MODELS)
    parser.add_argument('--config', default='paper', choices=CONFIGS)
    parser.add_argument('--modes', nargs='+', default=['fp32-explicit', 'bf16+compile'], choices=MODES,
                        help='the first is the reference')
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--batch', type=int, default=4, help='training batch (paper: 4)')
    parser.add_argument('--train-size', type=int, default=64, help='LR patch side (paper: 64)')
    parser.add_argument('--pool', type=int, default=256, help='HR patches cut once; batches are drawn from them')
    parser.add_argument('--seed', type=int, default=0, help='weights seed of every mode; the noise rerun uses seed+1')
    parser.add_argument('--smooth', type=int, default=10, help='moving-average window in steps')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--json', default=None, help='write the curves and the summary here')
    parser.add_argument('--plot', default=None, help='write a PNG of the curves here')
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    if args.steps < 1 or args.pool < args.batch:
        parser.error('--steps must be at least 1 and --pool at least --batch')
    return args


def patch_pool(count: int, lr_size: int, scale: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (LR, HR) uint8 RGB patch pairs, (N, H, W, 3), cut at random from the photographs."""
    from segsr.data.demo import read_skimage_photo
    from segsr.degradations.bicubic import make_lr_uint8

    hr_size = lr_size * scale
    photos = [photo for photo in (read_skimage_photo(name)[:, :, ::-1] for name in PHOTOS)
              if min(photo.shape[:2]) >= hr_size]
    if not photos:
        raise SystemExit(f'error: no sample photograph is {hr_size} pixels on each side; lower --train-size')
    rng = np.random.default_rng(seed)
    lq, gt = [], []
    for _ in tqdm(range(count), desc='patches', unit='patch'):
        photo = photos[rng.integers(len(photos))]
        top, left = (int(rng.integers(side - hr_size + 1)) for side in photo.shape[:2])
        hr = np.ascontiguousarray(photo[top:top + hr_size, left:left + hr_size])
        gt.append(hr)
        lq.append(make_lr_uint8(hr, scale))
    return np.stack(lq), np.stack(gt)


def as_batch(patches: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div(255).to(device)


def train_curve(model: str, config: str, mode: str, seed: int, args: argparse.Namespace,
                pool: tuple[np.ndarray, np.ndarray]) -> list[float]:
    """L1 loss of every step of one run; the batch order depends on nothing but ``args.seed``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    perf = performance_for(mode)
    net = build(model, config, mode, device, seed=seed)
    perf.prepare_network(net)
    optim = config_options(model, config)['train']['optim_g']
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=optim['lr'],
                                 betas=tuple(optim.get('betas', (0.9, 0.999))),
                                 weight_decay=optim.get('weight_decay', 0))
    order = torch.Generator().manual_seed(args.seed)
    losses = []
    net.train()
    for _ in tqdm(range(args.steps), desc=f'{model} {config} {mode} seed {seed}', unit='step'):
        index = torch.randint(len(pool[0]), (args.batch,), generator=order).numpy()
        lq, gt = as_batch(pool[0][index], device), as_batch(pool[1][index], device)
        _, loss = perf.train_step(net, optimizer, lq, lambda out, gt=gt: {'l1': torch.nn.functional.l1_loss(out, gt)})
        losses.append(loss['l1'].item())
    return losses


def moving_average(values: list[float], window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode='valid')


def distance(curve: list[float], reference: list[float], window: int) -> float:
    return float(np.mean(np.abs(moving_average(curve, window) - moving_average(reference, window))))


def summarise(runs: list[Run], window: int) -> list[dict]:
    """Per run: first and final loss, distance to the reference and that distance over the noise rerun's."""
    reference, noise_run = runs[0], runs[-1]
    noise = distance(noise_run.losses, reference.losses, window)
    tail = max(1, min(20, len(reference.losses)))
    rows = []
    for run in runs:
        gap = distance(run.losses, reference.losses, window)
        if run is reference or run is noise_run:
            verdict = 'reference' if run is reference else 'noise'
        else:
            verdict = 'yes' if gap <= noise else 'no'
        rows.append({'run': run.label, 'first loss': run.losses[0],
                     f'mean of last {tail}': statistics.fmean(run.losses[-tail:]), 'gap to reference': gap,
                     'gap / noise': gap / noise if noise > 0 else float('nan'), 'within noise': verdict})
    return rows


def plot(runs: list[Run], window: int, title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    from segsr.utils.figures import save_figure

    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for run in runs:
        line, = ax.plot(range(1, len(run.losses) + 1), run.losses, alpha=0.25, linewidth=0.8)
        smooth = moving_average(run.losses, window)
        ax.plot(range(len(run.losses) - len(smooth) + 1, len(run.losses) + 1), smooth, color=line.get_color(),
                linewidth=1.6, label=run.label)
    ax.set(xlabel='step', ylabel='L1 loss', yscale='log', title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    scale = config_options(args.model, args.config)['scale']
    pool = patch_pool(args.pool, args.train_size, scale, args.seed)
    reference = args.modes[0]
    jobs = [(mode, mode, args.seed) for mode in args.modes]
    jobs.append((f'{reference} (seed {args.seed + 1})', reference, args.seed + 1))
    runs = []
    with fresh_process_pool() as executor:
        for label, mode, seed in jobs:
            losses = executor.submit(train_curve, args.model, args.config, mode, seed, args, pool).result()
            runs.append(Run(label, mode, seed, losses))

    title = (f'{args.model} {args.config}, batch {args.batch} at LR {args.train_size}, {args.steps} steps, '
             f'{device_name(args.device, args.threads)}')
    rows = summarise(runs, args.smooth)
    print(f'\n{title}; moving average of {args.smooth} steps')
    from segsr.utils.report import format_table

    print(format_table(rows, list(rows[0])))
    if args.json:
        from segsr.utils.files import atomic_write_bytes

        report = {'args': vars(args), 'device': device_name(args.device, args.threads), 'torch': torch.__version__,
                  'python': sys.version.split()[0], 'summary': rows, 'runs': [asdict(run) for run in runs]}
        atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    if args.plot:
        plot(runs, args.smooth, title, Path(args.plot))
    return rows


if __name__ == '__main__':
    main()
