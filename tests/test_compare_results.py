"""scripts/compare_results.py: table and gain plot from test.py-style results of guided and unguided runs."""

import json

import cv2
import pytest

from scripts.compare_results import backbone_of, main

PROTOCOL = {'channel': 'Y', 'crop_border': 4, 'text': 'Y channel, 4-pixel border cropped'}


def write_result(root, name, network, psnr, ssim, params=1000, trainable=None, dataset='demo_val', scale=4):
    """A results JSON as segsr/test.py writes it (results/<name>/<dataset>.json)."""
    payload = {
        'name': name, 'network': network, 'scale': scale, 'dataset': dataset, 'protocol': PROTOCOL,
        'weights': f'experiments/{name}/models/net_g_latest.pth', 'params': params,
        'trainable_params': params if trainable is None else trainable, 'num_images': 2,
        'average': {'psnr': psnr, 'ssim': ssim, 'bicubic_psnr': 20.0}, 'per_class': [], 'images': [],
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
