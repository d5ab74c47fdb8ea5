"""scripts/compare_results.py: table and gain plot from test.py-style results of guided and unguided runs."""

import json

import cv2
import numpy as np
import pytest

from scripts.compare_results import backbone_of, main
from segsr.utils.paired_stats import paired_difference

PROTOCOL = {'channel': 'Y', 'crop_border': 4, 'text': 'Y channel, 4-pixel border cropped'}


def write_result(root, name, network, psnr, ssim, params=1000, trainable=None, dataset='demo_val', scale=4,
                 images=()):
    """A results JSON as segsr/test.py writes it (results/<name>/<dataset>.json)."""
    payload = {
        'name': name, 'network': network, 'scale': scale, 'dataset': dataset, 'protocol': PROTOCOL,
        'weights': f'experiments/{name}/models/net_g_latest.pth', 'params': params,
        'trainable_params': params if trainable is None else trainable, 'num_images': 2,
        'average': {'psnr': psnr, 'ssim': ssim, 'bicubic_psnr': 20.0}, 'per_class': [], 'images': list(images),
    }
    path = root / name / f'{dataset}.json'
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.parametrize('network, expected', [
    ('GuidedEDSR', ('EDSR', True)), ('StagedEDSR', ('EDSR', False)), ('EDSR', ('EDSR', False)),
    ('SEGSR', ('HAT', True)), ('HAT', ('HAT', False)), ('GuidedSwinIR', ('SwinIR', True)),
])
def test_pairing_rule(network, expected):
    assert backbone_of(network) == expected


def test_table_and_plot_from_two_backbones(tmp_path):
    results = tmp_path / 'results'
    write_result(results, 'demo_EDSR_SRx4', 'StagedEDSR', 24.50, 0.70, params=5000)
    write_result(results, 'demo_GuidedEDSR_SRx4', 'GuidedEDSR', 24.75, 0.71, params=9000, trainable=7000)
    write_result(results, 'demo_HAT_SRx4', 'HAT', 25.00, 0.72)
    write_result(results, 'demo_GuidedHAT_SRx4', 'SEGSR', 24.90, 0.73)
    write_result(results, 'demo_RCAN_SRx4', 'StagedRCAN', 23.00, 0.69)  # no guided twin: table only
    out = main([str(results / 'demo_*EDSR*'), str(results / 'demo_HAT_SRx4'), str(results / 'demo_GuidedHAT_SRx4'),
                str(results / 'demo_RCAN_SRx4' / 'demo_val.json'), '--out', str(tmp_path / 'study')])

    markdown = (out / 'comparison.md').read_text()
    assert 'PSNR and SSIM: Y channel, 4-pixel border cropped.' in markdown
    assert '| GuidedEDSR | EDSR | yes | demo_val | x4 | 24.7500 | 0.7100 | 20.0000 | 9,000 | 7,000 |' in markdown
    assert '| StagedRCAN | RCAN | no | demo_val | x4 | 23.0000 |' in markdown
    gain_section = markdown.split('## PSNR gain from guidance')[1]
    assert '| EDSR | demo_val | x4 | 24.5000 | 24.7500 | +0.2500 | +0.0100 |' in gain_section
    assert '| HAT | demo_val | x4 | 25.0000 | 24.9000 | -0.1000 | +0.0100 |' in gain_section
    assert 'RCAN' not in gain_section
    image = cv2.imread(str(out / 'guidance_gain.png'))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 300


def test_duplicate_runs_are_refused(tmp_path, capsys):
    write_result(tmp_path / 'a', 'demo_EDSR_SRx4', 'StagedEDSR', 24.5, 0.7)
    write_result(tmp_path / 'b', 'demo_EDSR_SRx4', 'EDSR', 24.6, 0.7)
    write_result(tmp_path / 'a', 'demo_GuidedEDSR_SRx4', 'GuidedEDSR', 24.7, 0.7)
    with pytest.raises(SystemExit) as excinfo:
        main([str(tmp_path / 'a'), str(tmp_path / 'b'), '--out', str(tmp_path / 'out')])
    assert 'two unguided EDSR results for demo_val x4' in str(excinfo.value)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('content, expected', [
    ('{"name": "x"}', 'lacks network, scale'), ('not json', 'is not a readable JSON file'),
])
def test_bad_results_file_gets_a_one_line_error(tmp_path, content, expected):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(SystemExit) as excinfo:
        main([str(path), '--out', str(tmp_path / 'out')])
    assert expected in str(excinfo.value) and '\n' not in str(excinfo.value)


def test_results_without_a_pair_are_refused(tmp_path):
    write_result(tmp_path, 'demo_EDSR_SRx4', 'StagedEDSR', 24.5, 0.7)
    with pytest.raises(SystemExit, match='no backbone has both'):
        main([str(tmp_path), '--out', str(tmp_path / 'out')])


def image_rows(psnr: np.ndarray, ssim: np.ndarray) -> list[dict]:
    return [{'image': f'im{i:02d}', 'class': 'forest' if i % 2 else 'harbor', 'psnr': float(p), 'ssim': float(q)}
            for i, (p, q) in enumerate(zip(psnr, ssim, strict=True))]


def write_pair(root, psnr_shift: float, noise: float, guided_images=None):
    rng = np.random.default_rng(1)
    base_psnr, base_ssim = rng.uniform(22, 30, 20), rng.uniform(0.6, 0.8, 20)
    guided_psnr = base_psnr + psnr_shift + rng.normal(0, noise, 20)
    guided_ssim = base_ssim + 0.002 + rng.normal(0, 0.001, 20)
    write_result(root, 'demo_HAT_SRx4', 'HAT', base_psnr.mean(), base_ssim.mean(),
                 images=image_rows(base_psnr, base_ssim))
    write_result(root, 'demo_SEGSR_SRx4', 'SEGSR', guided_psnr.mean(), guided_ssim.mean(),
                 images=guided_images if guided_images is not None else image_rows(guided_psnr, guided_ssim))
    return guided_psnr - base_psnr


def gain_row(markdown: str) -> list[str]:
    section = markdown.split('## PSNR gain from guidance')[1]
    return [cell.strip() for cell in section.split('| HAT | demo_val |')[1].split('\n')[0].split('|')]


def test_a_consistent_gain_gets_an_interval_above_zero_and_a_small_p(tmp_path):
    diffs = write_pair(tmp_path / 'results', psnr_shift=0.2, noise=0.05)
    out = main([str(tmp_path / 'results'), '--out', str(tmp_path / 'study')])
    markdown = (out / 'comparison.md').read_text()
    cells = gain_row(markdown)
    low, high = (float(v) for v in cells[5].strip('[]').split(','))
    assert 0 < low < diffs.mean() < high
    assert float(cells[6]) < 0.001 and cells[9] == '20/0'
    per_class = markdown.split('## PSNR gain per class')[1]
    assert '| HAT | demo_val | x4 | forest | 10 |' in per_class and '| HAT | demo_val | x4 | harbor | 10 |' in per_class
    assert cv2.imread(str(out / 'guidance_gain.png')) is not None


def test_noise_around_zero_gets_an_interval_across_zero(tmp_path):
    write_pair(tmp_path / 'results', psnr_shift=0.0, noise=0.3)
    out = main([str(tmp_path / 'results'), '--out', str(tmp_path / 'study')])
    cells = gain_row((out / 'comparison.md').read_text())
    low, high = (float(v) for v in cells[5].strip('[]').split(','))
    assert low < 0 < high and float(cells[6]) > 0.05


def test_runs_on_different_images_are_not_paired(tmp_path):
    rows = image_rows(np.full(19, 25.0), np.full(19, 0.7))
    write_pair(tmp_path / 'results', 0.1, 0.1, guided_images=rows)
    with pytest.raises(SystemExit) as excinfo:
        main([str(tmp_path / 'results'), '--out', str(tmp_path / 'study')])
    assert 'scored different images (1 only in the first, 0 only in the second)' in str(excinfo.value)
    assert not (tmp_path / 'study').exists()


def test_identical_runs_differ_by_exactly_nothing():
    difference = paired_difference([25.0, 26.0, 27.0], [25.0, 26.0, 27.0])
    assert (difference.mean, difference.low, difference.high, difference.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert np.isnan(paired_difference([25.0], [26.0]).low)


def test_other_per_image_metrics_get_paired_intervals(tmp_path):
    rng = np.random.default_rng(2)
    psnr, ssim = rng.uniform(22, 30, 12), rng.uniform(0.6, 0.8, 12)
    cpsnr = psnr + 1
    plain = image_rows(psnr, ssim)
    guided = image_rows(psnr, ssim)
    for i, (a, b) in enumerate(zip(plain, guided, strict=True)):
        a |= {'cpsnr': float(cpsnr[i]), 'bicubic_cpsnr': 20.0}
        b |= {'cpsnr': float(cpsnr[i] + 0.3 + 0.01 * i), 'bicubic_cpsnr': 20.0}
    write_result(tmp_path, 'demo_HAT_SRx4', 'HAT', psnr.mean(), ssim.mean(), images=plain)
    write_result(tmp_path, 'demo_SEGSR_SRx4', 'SEGSR', psnr.mean(), ssim.mean(), images=guided)
    markdown = (main([str(tmp_path), '--out', str(tmp_path / 'study')]) / 'comparison.md').read_text()
    section = markdown.split('## Other metrics: guided minus unguided')[1]
    row = [c.strip() for c in section.split('| HAT | demo_val | x4 | cpsnr |')[1].split('\n')[0].split('|')]
    expected = np.mean([0.3 + 0.01 * i for i in range(12)])
    assert float(row[0]) == pytest.approx(expected, abs=1e-4)
    low, high = (float(v) for v in row[1].strip('[]').split(','))
    assert 0.3 <= low < expected < high <= 0.41 and row[3] == '12/0'
    assert 'bicubic_cpsnr' not in section


def test_raster_results_show_sam_and_ergas_with_paired_intervals(tmp_path):
    rng = np.random.default_rng(1)
    base = [{'image': f'w{i}', 'psnr': 30 + rng.normal(), 'ssim': 0.9, 'sam': 2 + rng.random(),
             'ergas': 3 + rng.random()} for i in range(6)]
    guided = [{**row, 'psnr': row['psnr'] + 0.2, 'sam': row['sam'] - 0.1 - 0.05 * i, 'ergas': row['ergas'] - 0.2}
              for i, row in enumerate(base)]
    average = {key: float(np.mean([row[key] for row in rows])) for rows in (base,) for key in ('sam', 'ergas')}
    guided_average = {key: float(np.mean([row[key] for row in guided])) for key in ('sam', 'ergas')}
    for name, network, rows, means in (('hat', 'HAT', base, average), ('segsr', 'SEGSR', guided, guided_average)):
        path = write_result(tmp_path / 'results', name, network, float(np.mean([r['psnr'] for r in rows])), 0.9,
                            dataset='s2_test', images=rows)
        payload = json.loads(path.read_text())
        payload['average'].update(means)
        path.write_text(json.dumps(payload))
    markdown = (main([str(tmp_path / 'results'), '--out', str(tmp_path / 'out')]) / 'comparison.md').read_text()
    header = next(line for line in markdown.splitlines() if line.startswith('| method'))
    assert '| SSIM | SAM (deg) | ERGAS | bicubic PSNR |' in header
    assert f"| {average['sam']:.3f} | {average['ergas']:.4f} |" in markdown
    spectral = markdown.split('## Spectral fidelity change from guidance (lower is better)')[1]
    sam_line = next(line for line in spectral.splitlines() if 'SAM (deg)' in line)
    sam_change = guided_average['sam'] - average['sam']
    expected = paired_difference([r['sam'] for r in base], [r['sam'] for r in guided])
    assert f'{sam_change:+.4f}' in sam_line and expected.interval_text(4) in sam_line
