"""Speed and peak memory of HAT with SDPA attention against the explicit softmax reference.

``--floor`` adds a row where the attention op is skipped (each window returns its queries): the
time no attention kernel can beat, so ``explicit / floor`` bounds the speed-up any kernel can give.

Each measurement runs in a fresh process so that peak memory is its own: on CUDA the peak of
torch.cuda.max_memory_allocated above what the model and input already hold, on CPU the growth
of the process's peak resident set over the same baseline (``segsr.benchmarking.harness.PeakMemory``).

    python scripts/benchmark_hat.py --device cuda
    python scripts/benchmark_hat.py --device cpu --batch 1 --size 32 --repeats 2
"""

import argparse
import statistics
import sys
from pathlib import Path

if __name__ == '__main__':  # run as a script: the project, not scripts/, comes first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from segsr.benchmarking.harness import (  # noqa: E402
    PeakMemory,
    check_device,
    fresh_process_pool,
    network_options,
    step_seconds,
)

SMALL = dict(
    embed_dim=60,
    depths=(4, 4),
    num_heads=(6, 6),
    window_size=8,
    compress_ratio=3,
    squeeze_factor=30,
    conv_scale=0.01,
    overlap_ratio=0.5,
    mlp_ratio=2,
    upscale=4,
    img_size=64,
    upsampler='pixelshuffle',
)
CONFIGS = ('paper', 'demo', 'small')


def hat_options(config: str) -> dict:
    """``paper`` and ``demo`` are the networks of their option files (as in benchmark.py); ``small`` is HAT-S-like."""
    if config == 'small':
        return dict(SMALL)
    options = network_options('HAT', config)
    options.pop('type')
    return options


IMPLS = ('sdpa', 'explicit')
PHASES = ('forward', 'forward+backward')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=4, help='images per batch (paper: 4)')
    parser.add_argument('--size', type=int, default=64, help='LR height and width (paper: 64)')
    parser.add_argument('--configs', nargs='+', default=['paper', 'small'], choices=CONFIGS)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--floor', action='store_true', help='also time HAT with the attention op skipped')
    args = parser.parse_args()
    check_device(parser, args.device)
    return args


def skip_attention(q: torch.Tensor, *_args, **_kwargs) -> torch.Tensor:
    """Stands in for windowed attention: same output shape, no attention cost."""
    return q


def measure(config: str, impl: str, phase: str, args: argparse.Namespace) -> tuple[float, float]:
    """Median seconds per step and peak extra memory in bytes for one config, path and phase."""
    import segsr  # noqa: F401  (registers HAT; imported in the worker process)
    from segsr.archs.hat_arch import HAT
    from segsr.nn import hat_blocks

    if impl == 'floor':
        hat_blocks.windowed_attention = skip_attention
        impl = 'explicit'

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = HAT(**hat_options(config), attn_impl=impl).to(device)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    training = phase == 'forward+backward'
    model.train(training)

    def step() -> None:
        with torch.set_grad_enabled(training):
            out = model(x)
            if training:
                out.mean().backward()
                model.zero_grad(set_to_none=True)

    memory = PeakMemory(device)
    memory.start()
    for _ in range(args.warmup):
        step()
    seconds = statistics.median(step_seconds(step, device, args.repeats))
    return seconds, memory.stop()


def main() -> None:
    args = parse_args()
    impls = IMPLS + ('floor',) * args.floor
    jobs = [(c, i, p) for c in args.configs for i in impls for p in PHASES]
    results = {}
    with fresh_process_pool() as pool:
        for job in tqdm(jobs, desc='benchmark', unit='run'):
            results[job] = pool.submit(measure, *job, args).result()

    memory = 'torch.cuda.max_memory_allocated' if args.device.startswith('cuda') else 'peak resident set growth'
    print(
        f'\nHAT x4, device {args.device}, batch {args.batch}, LR {args.size}x{args.size}, '
        f'median of {args.repeats} timed steps after {args.warmup} warm-up; peak memory = {memory} above model+input'
    )
    header = f'{"config":<7} {"attention":<17} {"forward ms":>11} {"fwd+bwd ms":>11} {"fwd MiB":>9} {"fwd+bwd MiB":>12}'
    print(header)
    print('-' * len(header))
    mib = 2**20
    for config in args.configs:
        rows = {impl: [results[(config, impl, p)] for p in PHASES] for impl in impls}
        for impl, ((t_f, m_f), (t_b, m_b)) in rows.items():
            print(f'{config:<7} {impl:<17} {t_f * 1e3:>11.1f} {t_b * 1e3:>11.1f} {m_f / mib:>9.1f} {m_b / mib:>12.1f}')
        (sf, smf), (sb, smb) = rows['sdpa']
        (ef, emf), (eb, emb) = rows['explicit']
        print(
            f'{config:<7} {"explicit / sdpa":<17} {ef / sf:>11.2f} {eb / sb:>11.2f} '
            f'{emf / max(smf, 1):>9.2f} {emb / max(smb, 1):>12.2f}'
        )
        if args.floor:
            (ff, _), (fb, _) = rows['floor']
            print(f'{config:<7} {"explicit / floor":<17} {ef / ff:>11.2f} {eb / fb:>11.2f}')


if __name__ == '__main__':
    main()
