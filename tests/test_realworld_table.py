"""scripts/realworld_table.py: two models on two LR sets, with the sensor model's paired gain on each."""

import numpy as np
from test_demo_table import write_run

from scripts.realworld_table import NOTE, main


def test_two_test_sets_each_with_both_models_and_their_difference(tmp_path):
    rng = np.random.default_rng(0)
    bicubic = {test_set: rng.uniform(24, 28, 8) for test_set in ('bicubic', 'sensor')}
    gains = {('bicubic', 'bicubic'): 1.0, ('bicubic', 'sensor'): 0.2, ('sensor', 'bicubic'): 0.8,
             ('sensor', 'sensor'): 0.9}
    folders = {key: write_run(tmp_path, f'{key[0]}_on_{key[1]}', 'HAT', bicubic[key[1]] + gain, bicubic[key[1]])
               for key, gain in gains.items()}
    table = main(['--bicubic-model', str(folders['bicubic', 'bicubic']), str(folders['bicubic', 'sensor']),
                  '--sensor-model', str(folders['sensor', 'bicubic']), str(folders['sensor', 'sensor']),
                  '--out', str(tmp_path / 'table.md')])
    assert (tmp_path / 'table.md').read_text() == table and NOTE in table
    rows = [[cell.strip() for cell in line.split('|')[1:-1]] for line in table.splitlines() if line.startswith('| ')]
    assert rows[0] == ['test LR', 'model', 'PSNR (dB)', 'SSIM']
    by_name = {(row[0], row[1]): row[2:] for row in rows[1:]}
    assert by_name['sensor LR', 'trained on sensor'][0] == f'{(bicubic["sensor"] + 0.9).mean():.3f}'
    assert by_name['sensor LR', 'bicubic (input)'][0] == f'{bicubic["sensor"].mean():.3f}'
    assert by_name['sensor LR', 'sensor − bicubic model'][0].startswith('+0.700 [+0.700, +0.700]')
    assert by_name['bicubic LR', 'sensor − bicubic model'][0].startswith('-0.200 [-0.200, -0.200]')
