"""Gather test.py results into one Markdown table and a plot of the PSNR gain from guidance per backbone.

    python scripts/compare_results.py results/demo_* --out results/guidance_study

Each source is a results JSON written by segsr/test.py, a folder searched for them, or a glob.
Writes ``comparison.md`` and ``guidance_gain.png`` under ``--out``. Pairing rule: a guided run
(network ``Guided<X>``, or ``SEGSR`` for HAT) is paired with the unguided run of the same backbone
(``<X>`` or ``Staged<X>``; ``HAT``) on the same dataset, scale and metric protocol.

Where both runs list their images, each gain also gets a 95 % bootstrap interval over images and a
paired Wilcoxon p-value, overall and per class (see :mod:`segsr.utils.paired_stats`), and so does every
other per-image metric both runs report (cPSNR, LR consistency, detail shares, spread, CLIP scores).
"""

import argparse
import glob
import sys
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.utils.figures import save_figure  # noqa: E402
from segsr.utils.files import atomic_write_bytes, write_failure  # noqa: E402
from segsr.utils.paired_stats import compare_metric, compare_per_class, pair_images  # noqa: E402
from segsr.utils.results_file import read_results  # noqa: E402

GUIDED_PREFIX, STAGED_PREFIX = 'Guided', 'Staged'
GUIDED_ALIASES = {'SEGSR': 'HAT'}  # SEGSR is SeG-SR as published: guidance on HAT
SPECTRAL = {'sam': ('SAM (deg)', 3), 'ergas': ('ERGAS', 4)}  # raster results (lower is better)


def backbone_of(network: str) -> tuple[str, bool]:
    """(backbone, guided) of a network type, by the pairing rule in the module docstring."""
    if network in GUIDED_ALIASES:
        return GUIDED_ALIASES[network], True
    if network.startswith(GUIDED_PREFIX) and len(network) > len(GUIDED_PREFIX):
        return network[len(GUIDED_PREFIX):], True
    return network.removeprefix(STAGED_PREFIX) or network, False


def find_result_files(sources: Iterable[str]) -> list[Path]:
    """Every JSON file named by the sources (files, folders searched recursively, glob patterns)."""
    files: dict[Path, None] = {}
    for source in sources:
        matches = [Path(p) for p in sorted(glob.glob(source))] or [Path(source)]
        for match in matches:
            if match.is_dir():
                found = sorted(match.rglob('*.json'))
            elif match.is_file():
                found = [match]
            else:
                raise SegSRError(f'results source {source} does not exist; give results/<name> folders or JSON files')
            files.update(dict.fromkeys(p.resolve() for p in found))
    if not files:
        raise SegSRError(f'no results JSON under {", ".join(sources)}; run segsr/test.py first')
    return list(files)


def load_result(path: Path) -> dict:
    result = read_results(path)
    backbone, guided = backbone_of(result['network'])
    return {**result, 'backbone': backbone, 'guided': guided, 'path': str(path)}


def protocol_text(result: dict) -> str:
    protocol = result['protocol']
    return protocol.get('text', str(protocol)) if isinstance(protocol, dict) else str(protocol)


def pair_key(result: dict) -> tuple:
    return result['backbone'], result['dataset'], result['scale'], protocol_text(result)


def guidance_gains(results: list[dict]) -> list[dict]:
    """One row per backbone/dataset/scale that has both a guided and an unguided result."""
    sides: dict[tuple, dict[bool, dict]] = {}
    for result in results:
        side = sides.setdefault(pair_key(result), {})
        if result['guided'] in side:
            kind = 'guided' if result['guided'] else 'unguided'
            raise SegSRError(f"two {kind} {result['backbone']} results for {result['dataset']} x{result['scale']}: "
                             f"{side[result['guided']]['path']} and {result['path']}; pass only one of them")
        side[result['guided']] = result
    gains = []
    for (backbone, dataset, scale, _), side in sorted(sides.items(), key=lambda item: tuple(map(str, item[0]))):
        if len(side) == 2:
            plain, guided = side[False]['average'], side[True]['average']
            gains.append({
                'backbone': backbone, 'dataset': dataset, 'scale': scale,
                'unguided': plain['psnr'], 'guided': guided['psnr'], 'gain': guided['psnr'] - plain['psnr'],
                'ssim_gain': guided.get('ssim', float('nan')) - plain.get('ssim', float('nan')),
                'spectral': {metric: guided[metric] - plain[metric] for metric in SPECTRAL
                             if metric in plain and metric in guided},
                **paired_statistics(side[False], side[True]),
            })
    return gains


def paired_statistics(plain: dict, guided: dict) -> dict:
    """Per-image paired statistics of guided minus unguided, when both results list their images."""
    if not plain.get('images') or not guided.get('images'):
        return {'psnr_diff': None, 'ssim_diff': None, 'per_class': {}, 'other_diffs': {}}
    pairs = pair_images(plain['images'], guided['images'], f"{plain['path']} and {guided['path']}")
    return {'psnr_diff': compare_metric(pairs, 'psnr'), 'ssim_diff': compare_metric(pairs, 'ssim'),
            'per_class': compare_per_class(pairs, 'psnr'),
            'other_diffs': {metric: compare_metric(pairs, metric) for metric in other_metrics(pairs)}}


def other_metrics(pairs: list[tuple[dict, dict]]) -> list[str]:
    """The per-image metrics besides PSNR and SSIM (SAM, ERGAS, cPSNR, LR consistency, CLIP, ...) that both runs
    report."""
    shared = set(pairs[0][0]) & set(pairs[0][1])
    return sorted(key for key in shared if key not in ('image', 'class', 'psnr', 'ssim')
                  and not key.startswith('bicubic_') and isinstance(pairs[0][0][key], (int, float)))


def interval_cells(difference, digits: int) -> list[str]:
    if difference is None:
        return ['n/a', 'n/a']
    return [difference.interval_text(digits), f'{difference.p_value:.3g}']


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    return '\n'.join(lines + ['| ' + ' | '.join(row) + ' |' for row in rows])


def format_metric(average: dict, key: str, digits: int) -> str:
    return f'{average[key]:.{digits}f}' if key in average else ''


def comparison_markdown(results: list[dict], gains: list[dict]) -> str:
    protocols = sorted({protocol_text(r) for r in results})
    ordered = sorted(results, key=lambda r: (r['dataset'], r['scale'], r['backbone'], r['guided'], r['name']))
    header = ['method', 'backbone', 'guidance', 'dataset', 'scale', 'PSNR (dB)', 'SSIM', 'bicubic PSNR',
              'params', 'trainable params', 'run']
    rows = [[r['network'], r['backbone'], 'yes' if r['guided'] else 'no', r['dataset'], f"x{r['scale']}",
             format_metric(r['average'], 'psnr', 4), format_metric(r['average'], 'ssim', 4),
             format_metric(r['average'], 'bicubic_psnr', 4), f"{r['params']:,}", f"{r['trainable_params']:,}",
             r['name']] for r in ordered]
    spectral = [metric for metric in SPECTRAL if any(metric in r['average'] for r in ordered)]
    for metric in spectral:
        header.insert(header.index('bicubic PSNR'), SPECTRAL[metric][0])
        for row, result in zip(rows, ordered, strict=True):
            row.insert(header.index(SPECTRAL[metric][0]), format_metric(result['average'], metric,
                                                                        SPECTRAL[metric][1]))
    if len(protocols) > 1:
        header.append('protocol')
        for row, result in zip(rows, ordered, strict=True):
            row.append(protocol_text(result))
    parts = ['# SR results with and without semantic guidance', '',
             f'PSNR and SSIM: {protocols[0]}.' if len(protocols) == 1 else 'PSNR and SSIM: see the protocol column.',
             '', markdown_table(header, rows), '', '## PSNR gain from guidance', '']
    if gains:
        parts.append(markdown_table(
            ['backbone', 'dataset', 'scale', 'unguided PSNR', 'guided PSNR', 'gain (dB)', 'SSIM gain',
             '95 % CI (dB)', 'Wilcoxon p', 'SSIM 95 % CI', 'SSIM p', 'images better/worse'],
            [[g['backbone'], g['dataset'], f"x{g['scale']}", f"{g['unguided']:.4f}", f"{g['guided']:.4f}",
              f"{g['gain']:+.4f}", f"{g['ssim_gain']:+.4f}", *interval_cells(g['psnr_diff'], 3),
              *interval_cells(g['ssim_diff'], 4), better_worse(g['psnr_diff'])] for g in gains]))
        parts += ['', 'Intervals: 95 % percentile bootstrap of the mean per-image difference (guided minus '
                  'unguided), resampled over images; p: paired Wilcoxon signed-rank test. An interval that '
                  'contains 0 does not show a difference.']
        other_rows = [[g['backbone'], g['dataset'], f"x{g['scale']}", metric, f'{d.mean:+.4f}', d.interval_text(4),
                       f'{d.p_value:.3g}', f'{d.better}/{d.worse}']
                      for g in gains for metric, d in g['other_diffs'].items() if metric not in SPECTRAL]
        if other_rows:
            parts += ['', '## Other metrics: guided minus unguided', '', markdown_table(
                ['backbone', 'dataset', 'scale', 'metric', 'difference', '95 % CI', 'Wilcoxon p',
                 'images higher/lower'], other_rows),
                '', 'Metrics as in docs/evaluation.md; for hallucination, omission, LR MAE and LR SAM lower is better.']
        spectral_rows = [[g['backbone'], g['dataset'], f"x{g['scale']}", SPECTRAL[metric][0], f'{change:+.4f}',
                          *interval_cells(g['other_diffs'].get(metric), 4)]
                         for g in gains for metric, change in g['spectral'].items()]
        if spectral_rows:
            parts += ['', '## Spectral fidelity change from guidance (lower is better)', '', markdown_table(
                ['backbone', 'dataset', 'scale', 'measure', 'change', '95 % CI', 'Wilcoxon p'], spectral_rows)]
        class_rows = [[g['backbone'], g['dataset'], f"x{g['scale']}", name, str(d.images), f'{d.mean:+.4f}',
                       d.interval_text(3), f'{d.p_value:.3g}', f'{d.better}/{d.worse}']
                      for g in gains for name, d in g['per_class'].items()]
        if class_rows:
            parts += ['', '## PSNR gain per class', '', markdown_table(
                ['backbone', 'dataset', 'scale', 'class', 'images', 'gain (dB)', '95 % CI (dB)', 'Wilcoxon p',
                 'images better/worse'], class_rows)]
    else:
        parts.append('No backbone has both a guided and an unguided result.')
    return '\n'.join(parts) + '\n'


def better_worse(difference) -> str:
    return 'n/a' if difference is None else f'{difference.better}/{difference.worse}'


def error_bars(gains: list[dict]) -> list[list[float]]:
    """Distances from each gain to its interval's ends (0 where the runs list no images)."""
    below, above = [], []
    for gain in gains:
        difference = gain['psnr_diff']
        known = difference is not None and difference.low == difference.low  # NaN for a single image
        below.append(gain['gain'] - difference.low if known else 0.0)
        above.append(difference.high - gain['gain'] if known else 0.0)
    return [below, above]


def plot_gains(gains: list[dict], path: Path) -> None:
    """Grouped bars: one group per backbone, one bar per dataset and scale."""
    backbones = sorted({g['backbone'] for g in gains})
    settings = sorted({(g['dataset'], g['scale']) for g in gains}, key=lambda s: (s[0], s[1]))
    width = 0.8 / max(len(settings), 1)
    fig = Figure(figsize=(max(4.0, 1.6 * len(backbones) + 1.5), 3.6))
    ax = fig.subplots()
    for index, (dataset, scale) in enumerate(settings):
        chosen = {g['backbone']: g for g in gains if (g['dataset'], g['scale']) == (dataset, scale)}
        present = [b for b in backbones if b in chosen]
        xs = [i + (index - (len(settings) - 1) / 2) * width for i, b in enumerate(backbones) if b in chosen]
        bars = ax.bar(xs, [chosen[b]['gain'] for b in present], width, label=f'{dataset} x{scale}',
                      yerr=error_bars([chosen[b] for b in present]), capsize=3)
        ax.bar_label(bars, fmt='%+.3f', fontsize=8)
    ax.axhline(0, color='black', linewidth=0.8)
    ax.set_xticks(range(len(backbones)), backbones)
    ax.set_ylabel('PSNR gain from guidance (dB)')
    ax.set_title('Guided minus unguided PSNR, per backbone (bars: 95 % CI over images)')
    if settings:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sources', nargs='+', help='results JSON files, results folders or glob patterns')
    parser.add_argument('--out', required=True, help='folder for comparison.md and guidance_gain.png')
    args = parser.parse_args(argv)
    try:
        results = [load_result(path) for path in find_result_files(args.sources)]
        gains = guidance_gains(results)
        if not gains:
            raise SegSRError('no backbone has both a guided and an unguided result; pass both runs of a backbone')
        out = Path(args.out)
        markdown = comparison_markdown(results, gains)
        try:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / 'comparison.md', markdown.encode('utf-8'))
            plot_gains(gains, out / 'guidance_gain.png')
        except OSError as err:
            raise write_failure(out, err, 'into', 'choose another --out folder') from None
    except SegSRError as err:
        sys.exit(f'error: {err}')
    print(markdown)
    print(f'Written {out / "comparison.md"} and {out / "guidance_gain.png"}')
    return out


if __name__ == '__main__':
    main()
