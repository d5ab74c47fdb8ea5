"""The training degradation outside training: a picture of its stages (scripts/degradation_dump.py) and a
held-out LR set made by it (scripts/make_degraded_lr.py), on the demo data and the shipped sensor file."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT

from scripts.degradation_dump import main as dump_main
from scripts.make_degraded_lr import main as degrade_main
from segsr.data.degraded_samples import sample_stages
from segsr.options.cli import parse_command_line, setup_options

SENSOR_FILE = ROOT / 'options' / 'train' / 'demo_HAT_SRx4_sensor.yml'


def on_demo_data(demo_data: Path) -> list[str]:
    return ['--force_yml', f'datasets:train:dataroot_gt={demo_data / "HR" / "train"}',
            f'datasets:train:meta_info_file={demo_data / "meta" / "train.txt"}',
            f'datasets:val:dataroot_gt={demo_data / "HR" / "val"}',
            f'datasets:val:dataroot_lq={demo_data / "LR_x4" / "val"}']


def test_sensor_stages_of_training_samples_in_order(demo_data, tmp_path):
    opt = setup_options(parse_command_line(True, ['-opt', str(SENSOR_FILE), *on_demo_data(demo_data)]), True)
    samples = sample_stages(opt, count=2, seed=0)
    assert [list(sample) for sample in samples] == [
        ['hr', '1_sensor_psf', '1_sensor_sampled', '1_sensor_noise', '1_sensor_quantised', 'lr']] * 2
    first = samples[0]
    assert first['hr'].shape == first['1_sensor_psf'].shape == (3, 64, 64) and first['lr'].shape == (3, 16, 16)
    assert np.allclose(first['lr'].numpy() * 255, np.round(first['lr'].numpy() * 255), atol=1e-4)  # bits: 8
    assert not np.array_equal(first['1_sensor_noise'].numpy(), first['1_sensor_sampled'].numpy())

    picture = tmp_path / 'dump.png'
    dump_main(['-opt', str(SENSOR_FILE), '--num', '2', '--out', str(picture), *on_demo_data(demo_data)])
    image = cv2.imread(str(picture))
    assert image is not None and image.shape[1] > image.shape[0]  # six panels side by side, two rows


def test_degradation_dump_asking_for_more_samples_than_there_are_is_one_line(demo_data, tmp_path):
    with pytest.raises(SystemExit) as stop:
        dump_main(['-opt', str(SENSOR_FILE), '--num', '1000', '--out', str(tmp_path / 'd.png'),
                   *on_demo_data(demo_data)])
    assert str(stop.value.code).startswith('error: the training set holds 100 samples, fewer than the 1000')
    assert not (tmp_path / 'd.png').exists()


def degrade(demo_data: Path, out: Path, seed: int) -> None:
    degrade_main(['-opt', str(SENSOR_FILE), '--hr', str(demo_data / 'HR' / 'val'), '--out', str(out),
                  '--seed', str(seed), *on_demo_data(demo_data)])


def test_held_out_lr_set_is_the_sensor_models_and_reproducible(demo_data, tmp_path):
    first, again, other = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    degrade(demo_data, first, seed=0)
    degrade(demo_data, again, seed=0)
    degrade(demo_data, other, seed=1)
    names = sorted(path.name for path in (demo_data / 'HR' / 'val').iterdir())
    assert sorted(path.name for path in first.iterdir()) == names
    for name in names:
        lr = cv2.imread(str(first / name))
        hr = cv2.imread(str(demo_data / 'HR' / 'val' / name))
        assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
        assert (again / name).read_bytes() == (first / name).read_bytes()
        bicubic = cv2.imread(str(demo_data / 'LR_x4' / 'val' / name))
        assert not np.array_equal(lr, bicubic)
    assert any((other / name).read_bytes() != (first / name).read_bytes() for name in names)

    before = (first / names[0]).read_bytes()
    with pytest.raises(SystemExit) as stop:
        degrade(demo_data, first, seed=2)
    assert str(stop.value.code).startswith(f'error: {first} already holds {len(names)} of these LR files')
    assert (first / names[0]).read_bytes() == before


def test_a_missing_hr_folder_is_one_line(demo_data, tmp_path):
    with pytest.raises(SystemExit) as stop:
        degrade_main(['-opt', str(SENSOR_FILE), '--hr', str(tmp_path / 'absent'), '--out', str(tmp_path / 'lr'),
                      *on_demo_data(demo_data)])
    assert str(stop.value.code) == f'error: {tmp_path / "absent"} is not a folder; give the folder of HR images'
    assert not (tmp_path / 'lr').exists()
