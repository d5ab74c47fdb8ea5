"""scripts/demo_table.py: bicubic, HAT, SeG-SR (plain and "+") and their paired differences in one table."""

import json

import numpy as np
import pytest

from scripts.demo_table import RANDOM_CLIP_NOTE, main

PROTOCOL = {'channel': 'Y', 'crop_border': 4, 'text': 'Y channel, 4-pixel border cropped'}


def write_run(root, name, network, psnr: np.ndarray, bicubic: np.ndarray):
    images = [{'image': f'im{i}', 'psnr': float(p), 'ssim': 0.7 + p / 1000, 'bicubic_psnr': float(b),
               'bicubic_ssim': 0.6} for i, (p, b) in enumerate(zip(psnr, bicubic, strict=True))]
    average = {key: float(np.mean([row[key] for row in images])) for key in images[0] if key != 'image'}
    path = root / name / 'demo_val.json'
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({'name': name, 'network': network, 'dataset': 'demo_val', 'num_images': len(images),
                                'protocol': PROTOCOL, 'average': average, 'images': images}))
    return path.parent


def test_one_table_with_every_method_and_difference(tmp_path):
    rng = np.random.default_rng(0)
    bicubic = rng.uniform(24, 28, 12)
    hat = bicubic + 1.0 + rng.normal(0, 0.05, 12)
    runs = {'hat': write_run(tmp_path, 'hat', 'HAT', hat, bicubic),
            'segsr': write_run(tmp_path, 'segsr', 'SEGSR', hat + 0.3 + rng.normal(0, 0.02, 12), bicubic),
            'hat-plus': write_run(tmp_path, 'hat_plus', 'HAT', hat + 0.1, bicubic)}
    table = main([f'--{k}={v}' for k, v in runs.items()] + ['--out', str(tmp_path / 'demo.md')])
    assert (tmp_path / 'demo.md').read_text() == table
    rows = {line.split('|')[1].strip(): line for line in table.splitlines() if line.startswith('| ')}
    assert list(rows) == ['method', 'bicubic', 'HAT', 'HAT+', 'SeG-SR', 'SeG-SR − HAT', 'HAT+ − HAT']
    assert f'| bicubic | {bicubic.mean():.4f} | 0.6000 |' in rows['bicubic']
    low, high = (float(v) for v in rows['SeG-SR − HAT'].split('[')[1].split(']')[0].split(','))
    assert 0.25 < low < 0.3 < high < 0.35
    assert '+0.100 [+0.100, +0.100]' in rows['HAT+ − HAT']
    assert RANDOM_CLIP_NOTE in table and 'demo_val, 12 images, Y channel, 4-pixel border cropped' in table


def test_missing_run_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as excinfo:
        main(['--hat', str(tmp_path / 'none'), '--segsr', str(tmp_path / 'none')])
    assert 'do not exist; run segsr/test.py first' in str(excinfo.value)


def test_consistency_and_cpsnr_columns_when_the_runs_hold_them(tmp_path):
    rng = np.random.default_rng(1)
    bicubic = rng.uniform(24, 28, 6)
    paths = {}
    for flag, name, network, offset in (('hat', 'hat', 'HAT', 0.0), ('segsr', 'segsr', 'SEGSR', 0.5)):
        folder = write_run(tmp_path, name, network, bicubic + 1 + offset, bicubic)
        payload = json.loads((folder / 'demo_val.json').read_text())
        for i, row in enumerate(payload['images']):
            row |= {'lr_psnr': 45.0 + offset + i, 'cpsnr': row['psnr'] + 1, 'bicubic_lr_psnr': 50.0,
                    'bicubic_cpsnr': 20.0}
        payload['average'] |= {key: float(np.mean([row[key] for row in payload['images']]))
                               for key in ('lr_psnr', 'cpsnr', 'bicubic_lr_psnr', 'bicubic_cpsnr')}
        (folder / 'demo_val.json').write_text(json.dumps(payload))
        paths[flag] = folder
    table = main([f'--{k}={v}' for k, v in paths.items()])
    rows = {line.split('|')[1].strip(): line for line in table.splitlines() if line.startswith('| ')}
    assert rows['method'].rstrip().endswith('| LR-PSNR (dB) | cPSNR (dB) |')
    assert rows['bicubic'].rstrip().endswith('| 50.00 | 20.00 |')
    assert f'| {45 + 2.5:.2f} |' in rows['HAT']
    assert '+0.50 [+0.50, +0.50]' in rows['SeG-SR − HAT'] and 'pretrained CLIP' in table
