"""scripts/gpu_check.py: the CPU dry run end to end, the target verdicts, and the wheel install."""

import argparse
import base64
import hashlib
import importlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT

from scripts.gpu_check import (
    MEMORY_TARGET_BYTES,
    OUTPUT_FILES,
    SPEEDUP_TARGET,
    TARGET_STEPS,
    install_command,
    missing_wheels,
    plan,
    targets,
)
from segsr.options import parse_command_line
from segsr.options.schema import validate_options


@pytest.mark.slow
def test_quick_cpu_run_writes_summary_results_log_and_plot(tmp_path):
    out = tmp_path / 'out'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / 'scripts/gpu_check.py'), '--device', 'cpu', '--quick',
                           '--out', str(out)], env=env, capture_output=True, text=True, timeout=1000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUT_FILES)

    results = json.loads((out / 'results.json').read_text())
    assert [step['status'] for step in results['steps']] == ['ok'] * len(results['steps']), results['steps']
    assert {'environment', 'cuda tests', 'loss curves', 'training', 'archive inference'} <= {
        step['name'] for step in results['steps']}
    assert results['cuda_tests']['tests'] >= 1 and results['cuda_tests']['failures'] == 0
    assert results['training']['training']['iterations'] == 2
    archive = results['archive']['runs']
    assert [(row['files'], row['run']) for row in archive] == [
        (4, '2 processes x 1 thread (torchrun)'), (4, '1 process x 1 thread, reader/writer threads'),
        (4, '1 process x 1 thread, no reader/writer threads')]
    assert all(row['files_per_s'] > 0 and row['mp_per_s'] > 0 for row in archive)
    assert [row['pipeline'] for row in results['degradation']['rows']] == ['bicubic', 'realesrgan', 'sensor',
                                                                         'bicubic+sensor']
    for name in ('multispectral_training', 'rgb_segsr_training', 'sensor_training'):
        assert results['training'][name]['iterations'] == 2
        assert results['training'][name]['seconds_per_iter'] > 0
    tiled = results['tiled']['fp32']
    assert tiled['output'] == [4 * side for side in tiled['scene']]
    assert [row['status'] for row in results['targets']] == ['not measured'] * 4  # no paper config on a CPU

    summary = (out / 'summary.txt').read_text()
    assert all(row['target'] in summary for row in results['targets'])
    assert done.stdout.endswith(summary)
    assert '===== training: ok' in (out / 'gpu_check.log').read_text()
    assert 'iterations/s of the RGB SEGSR at the same size' in summary
    hat_image = results['hat_image']
    assert [(row['config'], row['mode']) for row in hat_image['results']] == [('small', 'fp32'), ('small', 'bf16')]
    assert all(row['seconds'] > 0 for row in hat_image['results'])
    assert f'(anchor {hat_image["anchor"]["seconds"]} s)' in summary


def benchmark_report(rate: float, peak_256: float, flops: int | None) -> dict:
    """benchmark.py's JSON for one (model, config, mode), reduced to the fields the summary reads."""
    train = {'seconds': 1 / rate, 'peak_bytes': 2**30, 'flops': flops}
    infer = {'256': {'seconds': 0.1, 'peak_bytes': peak_256, 'flops': flops}}
    return {'peak_tflops': 1000.0, 'results': [{'train': train, 'infer': infer}]}


def curves_report(config: str, steps: int, within: str) -> dict:
    rows = [{'run': 'fp32-explicit', 'gap / noise': 0.0, 'within noise': 'reference'},
            {'run': 'bf16+compile', 'gap / noise': 0.7 if within == 'yes' else 1.6, 'within noise': within},
            {'run': 'fp32-explicit (seed 1)', 'gap / noise': 1.0, 'within noise': 'noise'}]
    return {'args': {'model': 'SEGSR', 'config': config, 'steps': steps}, 'summary': rows}


def paper_results(fast_rate: float, fp32_peak: float, within: str, config: str = 'paper') -> dict:
    paper = {'fp32-explicit': benchmark_report(4.0, 2 * MEMORY_TARGET_BYTES, 10**12),
             'bf16+compile': benchmark_report(fast_rate, 0.5 * MEMORY_TARGET_BYTES, None),
             'fp32': benchmark_report(3.0, fp32_peak, 10**12)}
    return {'device': 'cuda', 'benchmark': {'paper': paper}, 'curves': curves_report(config, TARGET_STEPS, within)}


def test_targets_are_met_by_good_measurements_and_the_explicit_path_memory_is_not_judged():
    speed, curve, memory, mfu = targets(paper_results(4.0 * SPEEDUP_TARGET + 1, 0.9 * MEMORY_TARGET_BYTES, 'yes'))
    assert (speed['status'], speed['value']) == ('met', f'{(4.0 * SPEEDUP_TARGET + 1) / 4.0:.2f}x')
    assert (curve['status'], curve['value']) == ('met', 'gap/noise 0.70')
    assert memory['status'] == 'met' and memory['value'] == f'{0.9 * MEMORY_TARGET_BYTES / 1e9:.2f} GB'
    assert 'fp32-explicit 20.00 GB' in memory['detail']
    fast_rate = 4.0 * SPEEDUP_TARGET + 1
    assert mfu['status'] == 'reported' and mfu['value'] == f'{100 * 10**12 * fast_rate / 1000e12:.1f} %'


def test_targets_are_not_met_by_slow_diverging_or_large_measurements():
    speed, curve, memory, _ = targets(paper_results(4.0 * SPEEDUP_TARGET - 1, 1.1 * MEMORY_TARGET_BYTES, 'no'))
    assert [speed['status'], curve['status'], memory['status']] == ['not met'] * 3


def test_a_loss_curve_of_another_config_is_not_taken_for_the_target():
    curve = targets(paper_results(20.0, 0.5 * MEMORY_TARGET_BYTES, 'yes', config='demo'))[1]
    assert curve['status'] == 'not measured' and 'demo' in curve['detail']


def test_no_measurement_means_not_measured():
    assert [row['status'] for row in targets({'device': 'cuda'})] == ['not measured'] * 4


def write_wheel(folder: Path, name: str, version: str, source: str) -> None:
    """A minimal pure-Python wheel of one module."""
    dist_info = f'{name}-{version}.dist-info'
    files = {f'{name}/__init__.py': source,
             f'{dist_info}/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
             f'{dist_info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()

    record = ''.join(f'{path},sha256={digest(text)},{len(text.encode())}\n' for path, text in files.items())
    with zipfile.ZipFile(folder / f'{name}-{version}-py3-none-any.whl', 'w') as wheel:
        for path, text in {**files, f'{dist_info}/RECORD': record + f'{dist_info}/RECORD,,\n'}.items():
            wheel.writestr(path, text)


def test_only_missing_wheels_are_installed_into_their_own_folder(tmp_path):
    wheels, site = tmp_path / 'wheels', tmp_path / 'site'
    wheels.mkdir()
    write_wheel(wheels, 'segsr_probe_pkg', '1.0', 'VALUE = 42\n')
    (wheels / 'basicsr-1.4.2-py3-none-any.whl').write_bytes(b'')  # installed here: never opened
    names = missing_wheels(wheels)
    assert names == ['segsr_probe_pkg']
    subprocess.run(install_command(wheels, names, site), check=True, capture_output=True)
    probe = subprocess.run([sys.executable, '-c', 'import segsr_probe_pkg; print(segsr_probe_pkg.VALUE)'],
                           env={**os.environ, 'PYTHONPATH': str(site)}, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == '42'
    assert sorted(path.name for path in site.iterdir()) == ['segsr_probe_pkg', 'segsr_probe_pkg-1.0.dist-info']


def test_every_command_of_the_gpu_plan_is_accepted_by_its_script_and_the_training_options_by_the_schema(
        tmp_path, monkeypatch):
    """What a CPU cannot run of the GPU plan is at least parsed here, so the first GPU run fails on no typo."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.syspath_prepend(str(ROOT / 'scripts'))
    steps = plan(argparse.Namespace(device='cuda', quick=False), tmp_path / 'out', tmp_path, gpus=2)
    parsed = []
    for step in steps:
        program = Path(step.command[1]).name
        if program in ('benchmark.py', 'compare_loss_curves.py', 'tiled_inference_peak.py', 'benchmark_infer.py',
                       'benchmark_hat_image.py', 'benchmark_degradation.py'):
            options = importlib.import_module(program.removesuffix('.py')).parse_args(step.command[2:])
            assert getattr(options, 'device', None) == 'cuda' or options.devices == ['cuda']
            parsed.append(program)
        elif program == 'train.py' or 'torch.distributed.run' in step.command:
            train_args = step.command[step.command.index(str(ROOT / 'segsr/train.py')) + 1:]
            options_file = parse_command_line(True, train_args).opt
            validate_options(yaml.safe_load(Path(options_file).read_text()), options_file, True)
            parsed.append('train.py')
    assert parsed.count('benchmark.py') == 8 and parsed.count('train.py') == 5
    assert {'compare_loss_curves.py', 'tiled_inference_peak.py', 'benchmark_infer.py', 'benchmark_hat_image.py',
            'benchmark_degradation.py'} <= set(parsed)
