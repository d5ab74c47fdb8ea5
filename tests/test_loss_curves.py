"""scripts/compare_loss_curves.py: every mode starts from the same weights and sees the same batches."""

import importlib
import json
import math

import cv2
import pytest
import torch
from conftest import ROOT

TINY = ['--model', 'HAT', '--config', 'demo', '--train-size', '16', '--batch', '2', '--pool', '4']


@pytest.fixture
def curves(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / 'scripts'))
    return importlib.import_module('compare_loss_curves')


def test_runs_repeat_exactly_and_differ_only_by_mode_or_seed(curves):
    args = curves.parse_args([*TINY, '--steps', '4'])
    pool = curves.patch_pool(args.pool, args.train_size, 4, args.seed)
    assert pool[0].shape == (4, 16, 16, 3) and pool[1].shape == (4, 64, 64, 3)

    first = curves.train_curve('HAT', 'demo', 'fp32-explicit', 0, args, pool)
    again = curves.train_curve('HAT', 'demo', 'fp32-explicit', 0, args, pool)
    reseeded = curves.train_curve('HAT', 'demo', 'fp32-explicit', 1, args, pool)
    bf16 = curves.train_curve('HAT', 'demo', 'bf16', 0, args, pool)

    assert len(first) == 4 and all(math.isfinite(loss) for loss in first)
    assert first == again
    assert reseeded[0] != first[0]
    assert bf16[0] == pytest.approx(first[0], rel=1e-2)


def test_table_json_and_plot(curves, tmp_path, capsys):
    out_json, out_png = tmp_path / 'curves.json', tmp_path / 'curves.png'
    rows = curves.main([*TINY, '--steps', '3', '--smooth', '2', '--modes', 'fp32-explicit', 'bf16',
                        '--json', str(out_json), '--plot', str(out_png)])

    assert [row['run'] for row in rows] == ['fp32-explicit', 'bf16', 'fp32-explicit (seed 1)']
    assert rows[0]['gap to reference'] == 0 and rows[2]['gap / noise'] == pytest.approx(1.0)
    assert rows[1]['within noise'] in ('yes', 'no')
    assert 'gap / noise' in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert [len(run['losses']) for run in report['runs']] == [3, 3, 3]
    assert report['runs'][0]['losses'][0] == pytest.approx(report['runs'][1]['losses'][0], rel=1e-2)
    assert cv2.imread(str(out_png)) is not None


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_cuda_without_a_gpu_is_one_line(curves, capsys):
    with pytest.raises(SystemExit):
        curves.parse_args(['--device', 'cuda'])
    assert 'no CUDA GPU is visible here' in capsys.readouterr().err
