"""Every GPU check of segsr in one command, with a summary of the performance targets.

    bash scripts/gpu_check.sh --wheels wheels/gpu --out gpu_check      # on a GPU machine (wheels: fetch_gpu_wheels.sh)
    python scripts/gpu_check.py --device cpu --quick --out /tmp/check   # here: a dry run of this script

First, with ``--wheels``, the wheels of packages this machine lacks are installed into a folder of their own
(no index, no dependency resolution: the machine's torch is never touched). Then, in order and each under its
own time limit inside ``--budget`` seconds: the CUDA tests (``pytest -m cuda``); ``scripts/benchmark.py`` at
the paper config (fp32-explicit, bf16+compile, fp32, bf16); ``scripts/compare_loss_curves.py`` at the paper
config over 200 steps; ``scripts/tiled_inference_peak.py`` on a 2048x2048 LR scene (fp32 and bf16); segsr-infer
under torchrun (one rank per GPU, so a single rank on a one-GPU machine; two CPU ranks in the dry run) on a
folder of 64 rasters, then one process with and without its reader/writer threads (``benchmark_infer.py
--folder``); a short training of the demo EDSR (CUDA prefetcher, bf16), and the same with 2 NCCL processes where
2 GPUs are visible; the 4-band raster SEGSR and the RGB SEGSR at the same size, for their iterations/s; the
benchmark at the demo config last. Each step runs through the scripts' command lines, so a
failing or timed-out step costs only its own results.

The output folder (``--out``, else ``$OUT``) gets four files: summary.txt (targets and tables), results.json
(every step's status and JSON), gpu_check.log (every command's output) and loss_curves.png. ``--quick`` runs
the same steps at the smallest sizes, for testing this script on a CPU in a couple of minutes.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / 'scripts'
MODES = ('fp32-explicit', 'bf16+compile', 'fp32', 'bf16')
SPEEDUP_TARGET = 2.5
MEMORY_TARGET_BYTES = 10e9
TARGET_STEPS = 200
QUICK_STEP_TIMEOUT = 300.0
ITERATION_TIME = re.compile(r'time \(data\): ([0-9.]+)')
OUTPUT_FILES = ('summary.txt', 'results.json', 'gpu_check.log', 'loss_curves.png')
ENVIRONMENT_PROBE = """
import json, sys
from importlib import metadata
import segsr, basicsr, open_clip, rasterio, torch
names = ('torch', 'torchvision', 'numpy', 'basicsr', 'open_clip_torch', 'rasterio', 'timm', 'huggingface-hub')
versions = {}
for name in names:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
report = {'python': sys.version.split()[0], 'versions': versions, 'cuda': torch.version.cuda, 'gpus': gpus}
open(sys.argv[1], 'w').write(json.dumps(report))
"""


@dataclass
class Step:
    """One command, its time limit, and where its JSON lands in the results (``key`` path)."""

    name: str
    command: list[str]
    timeout: float
    key: tuple[str, ...] = ()
    output: Path | None = None
    essential: bool = False  # the steps after it cannot run when it fails
    record: dict = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda')
    parser.add_argument('--quick', action='store_true', help='smallest sizes and a few steps (a test of this script)')
    parser.add_argument('--out', default=os.environ.get('OUT'), help='output folder (default: $OUT)')
    parser.add_argument('--wheels', default=None, help='install the wheels in this folder whose packages are missing')
    parser.add_argument('--budget', type=float, default=None,
                        help='seconds for all steps together (default 480; --quick 900)')
    args = parser.parse_args(argv)
    if not args.out:
        parser.error('no output folder: pass --out DIR or set OUT')
    if args.wheels and not Path(args.wheels).is_dir():
        parser.error(f'--wheels {args.wheels} is not a folder; fetch it with bash scripts/fetch_gpu_wheels.sh')
    if args.budget is None:
        args.budget = 900.0 if args.quick else 480.0
    return args


def wheel_distribution(wheel: Path) -> str:
    return wheel.name.split('-')[0]


def missing_wheels(folder: Path) -> list[str]:
    """Distributions of the folder's wheels that are not installed here (by name; versions are not compared)."""
    missing = []
    for wheel in sorted(folder.glob('*.whl')):
        name = wheel_distribution(wheel)
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def install_command(folder: Path, names: list[str], site: Path) -> list[str]:
    """pip from the folder alone, each named package without its dependencies, into a folder of its own."""
    return [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-index', '--find-links', str(folder), '--no-deps',
            '--no-compile', '--target', str(site), *names]


def script(name: str, *arguments: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *arguments]


def short_training(options: dict, name: str, device: str, quick: bool, processes: int = 1) -> dict:
    """A demo option file cut to a few iterations of one size, so that runs of different networks compare."""
    iterations = 2 if quick else 40
    cuda = device == 'cuda'
    options.update(name=name, num_gpu=processes if cuda else 0)
    options['datasets']['train'].update(gt_size=32 if quick else 64, batch_size_per_gpu=2 if quick else 8,
                                        num_worker_per_gpu=0 if quick else 2)
    options['train'].update(total_iter=iterations, amp='bf16' if cuda else 'off')
    options['val']['val_freq'] = iterations
    options['logger'].update(print_freq=max(1, iterations // 4), save_checkpoint_freq=iterations, use_tb_logger=False)
    return options


def demo_folders(options: dict, demo: Path) -> None:
    """Point the image demo's train and val sets at the demo data made under ``demo``."""
    train_set, val_set = options['datasets']['train'], options['datasets']['val']
    train_set.update(dataroot_gt=str(demo / 'HR/train'), dataroot_lq=str(demo / 'LR_x4/train'),
                     meta_info_file=str(demo / 'meta/train.txt'))
    val_set.update(dataroot_gt=str(demo / 'HR/val'), dataroot_lq=str(demo / 'LR_x4/val'))


def training_options(demo: Path, name: str, device: str, quick: bool, processes: int) -> dict:
    """The demo EDSR on the demo data: on CUDA with bf16 and the CUDA prefetcher, one GPU per process."""
    options = short_training(yaml.safe_load((ROOT / 'options/train/demo_EDSR_SRx4.yml').read_text()), name, device,
                             quick, processes)
    demo_folders(options, demo)
    cuda = device == 'cuda'
    options['datasets']['train'].update(pin_memory=cuda, prefetch_mode='cuda' if cuda else None)
    return options


def rgb_segsr_training_options(demo: Path, device: str, quick: bool) -> dict:
    """The RGB SEGSR demo at the size of the multispectral run: the reference for its iterations/s."""
    options = short_training(yaml.safe_load((ROOT / 'options/train/demo_SEGSR_SRx4.yml').read_text()),
                             'rgb_segsr_training', device, quick)
    demo_folders(options, demo)
    options['network_g']['sfem']['pretrained'] = str(demo / 'tiny_clip.pt')
    return options


def sensor_training_options(demo: Path, device: str, quick: bool) -> dict:
    """The demo HAT trained on LR that the sensor model makes on the device (docs/realworld.md)."""
    options = short_training(yaml.safe_load((ROOT / 'options/train/demo_HAT_SRx4_sensor.yml').read_text()),
                             'sensor_training', device, quick)
    options['datasets']['train'].update(dataroot_gt=str(demo / 'HR/train'), meta_info_file=str(demo / 'meta/train.txt'))
    options['datasets']['val'].update(dataroot_gt=str(demo / 'HR/val'), dataroot_lq=str(demo / 'LR_x4/val'))
    return options


def raster_training_options(raster_demo: Path, device: str, quick: bool) -> dict:
    """The 4-band raster SEGSR demo (uint16 L2A-style rasters, radiometric contract) on the raster demo data."""
    options = short_training(yaml.safe_load((ROOT / 'options/train/demo_rasters_SEGSR_SRx4.yml').read_text()),
                             'multispectral_training', device, quick)
    for split, dataset in options['datasets'].items():
        dataset.update(dataroot_gt=str(raster_demo / 'scenes'), meta_info_file=str(raster_demo / f'splits/{split}.txt'))
    options['network_g']['sfem']['pretrained'] = str(raster_demo / 'tiny_clip.pt')
    return options


def plan(args: argparse.Namespace, out: Path, work: Path, gpus: int) -> list[Step]:
    """The steps in the order they run: the targets' measurements first, the demo benchmark last."""
    device, quick = args.device, args.quick
    steps = [Step('environment', [sys.executable, '-c', ENVIRONMENT_PROBE, str(work / 'environment.json')], 90,
                  ('environment',), work / 'environment.json', essential=True)]
    steps.append(Step('cuda tests', [sys.executable, '-m', 'pytest', '-m', 'cuda', '-q', '-p', 'no:cacheprovider',
                                     f'--junitxml={work / "cuda_tests.xml"}', str(ROOT / 'tests')], 150,
                      ('cuda_tests',), work / 'cuda_tests.xml'))

    def benchmark(config: str, mode: str, timeout: float) -> Step:
        output = work / f'benchmark_{config}_{mode}.json'
        sizes = ['--batch', '1', '--train-size', '16', '--infer-sizes', '16', '--warmup', '1', '--iters', '1',
                 '--threads', '1'] if quick else []
        command = script('benchmark.py', '--device', device, '--models', 'SEGSR', '--configs', config,
                         '--modes', mode, *sizes, '--json', str(output))
        return Step(f'benchmark {config} {mode}', command, timeout, ('benchmark', config, mode), output)

    hat_image = (['--configs', 'small', '--height', '16', '--width', '24', '--modes', 'fp32', 'bf16', '--warmup', '1',
                  '--repeats', '1', '--threads', '1'] if quick
                 else ['--configs', 'large', '--modes', 'bf16', 'bf16+compile', '--warmup', '1', '--repeats', '2'])
    steps.append(Step('hat whole image', script('benchmark_hat_image.py', '--device', device, *hat_image, '--json',
                                                str(work / 'hat_image.json')), 180, ('hat_image',),
                      work / 'hat_image.json'))

    if quick:
        steps.append(benchmark('demo', 'fp32-explicit', 60))
    else:
        steps += [benchmark('paper', mode, 240 if 'compile' in mode else 120) for mode in MODES]

    curves = (['--config', 'demo', '--steps', '3', '--batch', '1', '--train-size', '16', '--pool', '2',
               '--modes', 'fp32-explicit', 'bf16', '--threads', '1'] if quick
              else ['--config', 'paper', '--steps', str(TARGET_STEPS), '--modes', 'fp32-explicit', 'bf16+compile'])
    steps.append(Step('loss curves', script('compare_loss_curves.py', '--device', device, '--model', 'SEGSR', *curves,
                                            '--json', str(work / 'curves.json'), '--plot', str(out / OUTPUT_FILES[3])),
                      300, ('curves',), work / 'curves.json'))

    tiled = (['--opt', 'options/train/demo_SEGSR_SRx4.yml', '--size', '64', '--tile', '32', '--overlap', '8']
             if quick else ['--opt', 'options/train/SEGSR_SRx4_UCMerced.yml', '--size', '2048', '--batch', '4'])
    for precision in ('fp32',) if quick else ('fp32', 'bf16'):
        output = work / f'tiled_{precision}.json'
        command = script('tiled_inference_peak.py', '--device', device, *tiled,
                         *(['--bf16'] if precision == 'bf16' else []), '--json', str(output))
        steps.append(Step(f'tiled inference {precision}', command, 150, ('tiled', precision), output))

    archive = (['--folder', '4', '--folder-size', '32', '--tile-folder', '32', '--overlap', '8'] if quick
               else ['--folder', '64', '--folder-size', '512', '--tile-folder', '256', '--batch', '4'])
    archive += ['--runs', 'ranks', 'io', 'no-io', '--ranks', str(gpus or 2), '--json', str(work / 'archive.json')]
    steps.append(Step('archive inference', script('benchmark_infer.py', '--devices', device, *archive), 150,
                      ('archive',), work / 'archive.json'))

    degradation = ['--batch', '2', '--size', '32', '--iters', '2'] if quick else ['--batch', '4', '--size', '256']
    steps.append(Step('degradation', script('benchmark_degradation.py', '--device', device, *degradation, '--json',
                                            str(work / 'degradation.json')), 120, ('degradation',),
                      work / 'degradation.json'))

    demo = work / 'demo'
    steps.append(Step('demo data', script('make_demo_data.py', '--out', str(demo)), 90))
    runs = [('training', 1)] + ([('nccl training', 2)] if device == 'cuda' and gpus >= 2 else [])
    for name, processes in runs:
        experiment = name.replace(' ', '_')
        options = work / f'{experiment}.yml'
        run_options = training_options(demo, experiment, device, quick, processes)
        options.write_text(yaml.safe_dump(run_options, sort_keys=False))
        train = [str(ROOT / 'segsr/train.py'), '-opt', str(options), '--root', str(work)]
        if processes > 1:
            command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                       f'--nproc_per_node={processes}', *train, '--launcher', 'pytorch']
        else:
            command = [sys.executable, *train]
        steps.append(Step(name, command, 150, ('training', experiment),
                          work / 'experiments' / experiment / 'losses.jsonl'))
    raster_demo = work / 'raster_demo'
    steps.append(Step('raster demo data', script('make_demo_data.py', '--rasters', '--out', str(raster_demo)), 90))
    for name, options in (('multispectral_training', raster_training_options(raster_demo, device, quick)),
                          ('rgb_segsr_training', rgb_segsr_training_options(demo, device, quick)),
                          ('sensor_training', sensor_training_options(demo, device, quick))):
        options_file = work / f'{name}.yml'
        options_file.write_text(yaml.safe_dump(options, sort_keys=False))
        steps.append(Step(name.replace('_', ' '), [sys.executable, str(ROOT / 'segsr/train.py'), '-opt',
                                                   str(options_file), '--root', str(work)], 150,
                          ('training', name), work / 'experiments' / name / 'losses.jsonl'))
    if not quick:
        steps += [benchmark('demo', mode, 150 if 'compile' in mode else 60) for mode in MODES]
    for step in steps if quick else ():  # limits sized for a GPU; a dry run on a loaded CPU only must not hang
        step.timeout = QUICK_STEP_TIMEOUT
    return steps


def run_command(command: list[str], env: dict, log: Path, timeout: float) -> int | None:
    """Exit status of the command, or None when it ran out of time (its whole process group is then killed)."""
    with log.open('w') as out:
        out.write(f'$ {shlex.join(command)}\n')
        out.flush()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None


def read_output(step: Step):
    """What a finished step wrote: JSON, pytest's JUnit counts, or the training's last loss record."""
    if step.output is None or not step.output.is_file():
        return None
    if step.output.suffix == '.xml':
        suite = ElementTree.parse(step.output).getroot()
        suite = suite if suite.tag == 'testsuite' else suite.find('testsuite')
        return {key: int(suite.get(key, 0)) for key in ('tests', 'failures', 'errors', 'skipped')}
    if step.output.suffix == '.jsonl':
        records = [json.loads(line) for line in step.output.read_text().splitlines() if line.strip()]
        return {'iterations': len(records), 'last': records[-1] if records else None,
                'seconds_per_iter': logged_iteration_seconds(step.output.parent)}
    return json.loads(step.output.read_text())


def logged_iteration_seconds(experiment: Path) -> float | None:
    """Median of the per-iteration times basicsr's message logger wrote (the first, with its warm-up, left out)."""
    times = [float(value) for log in sorted(experiment.glob('train_*.log'))
             for value in ITERATION_TIME.findall(log.read_text(errors='replace'))]
    times = times[1:] or times
    return statistics.median(times) if times else None


def nested_set(tree: dict, key: tuple[str, ...], value) -> None:
    for part in key[:-1]:
        tree = tree.setdefault(part, {})
    tree[key[-1]] = value


def write_atomically(path: Path, text: str) -> None:
    """Written beside, then renamed: a reader never sees half a file (segsr itself may not import here, so the
    temporary name is spelled out as segsr.utils.files.temporary_path makes it, and cleaned by the same rule)."""
    temporary = path.with_name(f'.{path.name}.segsr-partial-{os.getpid()}{path.suffix}')
    temporary.write_text(text)
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------- summary


def train_rate(report: dict | None) -> float | None:
    return 1 / report['results'][0]['train']['seconds'] if report else None


def train_flops(reports: dict) -> int | None:
    """FLOPs of one training step, counted on the explicit path if it ran, else on any eager mode."""
    for mode in ('fp32-explicit', 'fp32', 'bf16'):
        flops = reports.get(mode) and reports[mode]['results'][0]['train']['flops']
        if flops:
            return flops
    return None


def target(name: str, status: str, value: str, detail: str = '') -> dict:
    return {'target': name, 'status': status, 'value': value, 'detail': detail}


def speed_target(paper: dict) -> dict:
    name = f'bf16+compile >= {SPEEDUP_TARGET}x fp32-explicit training it/s (SEGSR paper)'
    fast, reference = train_rate(paper.get('bf16+compile')), train_rate(paper.get('fp32-explicit'))
    if fast is None or reference is None:
        return target(name, 'not measured', '-', 'needs both paper benchmarks')
    ratio = fast / reference
    return target(name, 'met' if ratio >= SPEEDUP_TARGET else 'not met', f'{ratio:.2f}x',
                  f'{fast:.3f} against {reference:.3f} it/s')


def curve_target(curves: dict | None) -> dict:
    name = f'same loss curve over {TARGET_STEPS} steps: every mode within noise of the reference (SEGSR paper)'
    if not curves:
        return target(name, 'not measured', '-', 'no loss-curve result')
    compared = [row for row in curves['summary'] if row['within noise'] in ('yes', 'no')]
    if not compared:
        return target(name, 'not measured', '-', 'only the reference mode ran')
    ran = f'{curves["args"]["model"]} {curves["args"]["config"]} over {curves["args"]["steps"]} steps'
    detail = ', '.join(f'{row["run"]} gap/noise {row["gap / noise"]:.2f} ({row["within noise"]})' for row in compared)
    if (curves['args']['config'], curves['args']['steps']) != ('paper', TARGET_STEPS):
        return target(name, 'not measured', '-', f'ran {ran} instead: {detail}')
    worst = max(row['gap / noise'] for row in compared)
    met = all(row['within noise'] == 'yes' for row in compared)
    return target(name, 'met' if met else 'not met', f'gap/noise {worst:.2f}', detail)


def memory_target(paper: dict, device: str) -> dict:
    name = f'256x256 LR inference x4 under {MEMORY_TARGET_BYTES / 1e9:.0f} GB (SEGSR paper; fp32, bf16, compiled)'
    peaks = {mode: report['results'][0]['infer']['256']['peak_bytes'] for mode, report in paper.items()
             if '256' in report['results'][0]['infer']}
    if device != 'cuda' or not peaks:
        return target(name, 'not measured', '-', 'needs the paper benchmark on CUDA at LR 256')
    detail = ', '.join(f'{mode} {peak / 1e9:.2f} GB' for mode, peak in peaks.items())
    judged = [peak for mode, peak in peaks.items() if mode != 'fp32-explicit']
    if not judged:
        return target(name, 'not measured', '-', f'only the explicit reference path ran: {detail}')
    worst = max(judged)
    return target(name, 'met' if worst < MEMORY_TARGET_BYTES else 'not met', f'{worst / 1e9:.2f} GB', detail)


def mfu_target(paper: dict) -> dict:
    name = 'model FLOP utilisation of the training step (SEGSR paper)'
    flops = train_flops(paper)
    peak = next((report['peak_tflops'] for report in paper.values() if report.get('peak_tflops')), None)
    if not flops or not peak:
        return target(name, 'not measured', '-', 'needs counted FLOPs and a device bf16 peak')
    mfu = {mode: 100 * flops * train_rate(report) / (peak * 1e12) for mode, report in paper.items()}
    best = mfu.get('bf16+compile', max(mfu.values()))
    detail = ', '.join(f'{mode} {value:.1f} %' for mode, value in mfu.items())
    return target(name, 'reported', f'{best:.1f} %', f'{flops / 1e9:.0f} GFLOP/step, peak {peak:.0f} TFLOP/s: {detail}')


def targets(results: dict) -> list[dict]:
    paper = results.get('benchmark', {}).get('paper', {})
    return [speed_target(paper), curve_target(results.get('curves')), memory_target(paper, results['device']),
            mfu_target(paper)]


def benchmark_table(results: dict) -> list[str]:
    """One row per benchmark run: training speed and memory, inference speed and memory per size, MFU."""
    lines = []
    for config, reports in results.get('benchmark', {}).items():
        flops = train_flops(reports)
        for mode, report in reports.items():
            row, peak = report['results'][0], report.get('peak_tflops')
            rate = 1 / row['train']['seconds']
            infer = ' '.join(f'@{size}: {1 / entry["seconds"]:.2f} img/s {entry["peak_bytes"] / 2**30:.2f} GiB'
                             for size, entry in row['infer'].items())
            mfu = f'{100 * flops * rate / (peak * 1e12):.1f} %' if flops and peak else '-'
            memory = row['train']['peak_bytes'] / 2**30
            lines.append(f'  SEGSR {config:<5} {mode:<13} train {rate:8.3f} it/s {memory:6.2f} GiB  {infer}  MFU {mfu}')
    return lines


def hat_image_lines(report: dict | None) -> list[str]:
    """Each whole-image run beside the published anchor (the anchor's network and card may differ: both named)."""
    if not report:
        return ['  not measured']
    anchor, (height, width) = report['anchor'], (report['args']['height'], report['args']['width'])
    lines = [f'  HAT {row["config"]} {row["mode"]} LR {height}x{width}: {row["seconds"]:.3f} s/image '
             f'(anchor {anchor["seconds"]} s), peak {row["peak_bytes"] / 1e9:.2f} GB (anchor {anchor["peak_gb"]} GB)'
             for row in report['results']]
    return lines + [f'  anchor: {anchor["network"]} at {anchor["height"]}x{anchor["width"]} on {anchor["device"]}, '
                    f'{anchor["source"]}; here {report["device"]}']


def summary_text(results: dict) -> str:
    environment = results.get('environment') or {}
    versions = environment.get('versions', {})
    lines = [f'segsr GPU check on {", ".join(environment.get("gpus") or []) or "no GPU"} ({results["device"]}'
             f'{", quick" if results["quick"] else ""}), torch {versions.get("torch")}, python '
             f'{environment.get("python")}, {results["started"]}, {results["seconds"]:.0f} s', '', 'steps:']
    lines += [f'  {step["name"]:<28} {step["status"]:<28} {step["seconds"]:6.0f} s' for step in results['steps']]
    tests = results.get('cuda_tests')
    counts = ', '.join(f'{tests[key]} {key}' for key in ('tests', 'failures', 'errors', 'skipped')) if tests else '-'
    lines += ['', f'cuda tests: {counts}']
    lines += ['', 'benchmark (median step; peak memory of the phase):', *(benchmark_table(results) or ['  none'])]
    lines += ['', 'HAT x4 on one whole image:', *hat_image_lines(results.get('hat_image'))]
    lines += ['', 'tiled inference:']
    for precision, tiled in results.get('tiled', {}).items():
        peak = f'{tiled["peak_cuda_bytes"] / 2**30:.2f} GiB CUDA peak' if tiled['peak_cuda_bytes'] else 'CPU'
        lines.append(f'  {tiled["network"]} {precision} LR {tiled["scene"][0]}x{tiled["scene"][1]} -> '
                     f'{tiled["output"][0]}x{tiled["output"][1]}, tile {tiled["tile"]}, batch {tiled["batch"]}: '
                     f'{tiled["tiles"]} tiles in {tiled["seconds"]:.1f} s, {peak}')
    archive = results.get('archive')
    lines += ['', 'archive inference (segsr-infer; numbers from its manifest):']
    for row in archive['runs'] if archive else []:
        lines.append(f'  {archive["rasters"]} rasters of {archive["side"]} px, {row["run"]} on {row["device"]}: '
                     f'{row["files_per_s"]:.2f} files/s, {row["mp_per_s"]:.3f} MP/s '
                     f'({row["wall"]:.0f} s with start-up)')
    degradation = results.get('degradation')
    lines += ['', 'training degradations (ms per batch, segsr.degradations on the device):']
    for row in degradation['rows'] if degradation else []:
        lines.append(f'  {row["pipeline"]}: {row["ms_per_batch"]:.2f} ms ({row["vs_bicubic"]:.1f} x bicubic), batch '
                     f'{degradation["batch"]} x 3 x {degradation["size"]} x {degradation["size"]}')
    lines += ['', 'training:']
    runs = results.get('training', {})
    for name, run in runs.items():
        last, seconds = run['last'] or {}, run.get('seconds_per_iter')
        pace = f'{1 / seconds:.2f} it/s, ' if seconds else ''
        lines.append(f'  {name}: {run["iterations"]} steps, {pace}last record {json.dumps(last)}')
    bands, rgb = (runs.get(name, {}).get('seconds_per_iter') for name in ('multispectral_training',
                                                                             'rgb_segsr_training'))
    if bands and rgb:
        lines.append(f'  4-band SEGSR at {rgb / bands:.2f}x the iterations/s of the RGB SEGSR at the same size')
    if results.get('nccl_skipped'):
        lines.append(f'  nccl training: skipped, {results["nccl_skipped"]}')
    lines += ['', 'targets:']
    lines += [f'  {row["status"]:<13} {row["value"]:<15} {row["target"]}' + (f'\n{"":<32}{row["detail"]}'
                                                                            if row['detail'] else '')
              for row in results['targets']]
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------- main


def step_status(code: int | None, timeout: float) -> str:
    if code is None:
        return f'timed out after {timeout:.0f} s'
    return 'ok' if code == 0 else f'failed (exit {code})'


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix='segsr_gpu_check_'))
    log = out / OUTPUT_FILES[2]
    log.write_text('')
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    python_path = [str(ROOT)]
    started, clock = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), time.monotonic()
    gpus = torch.cuda.device_count() if args.device == 'cuda' else 0
    results = {'device': args.device, 'quick': args.quick, 'started': started, 'steps': []}
    steps = plan(args, out, work, gpus)
    if args.wheels:
        site = work / 'site'
        names = missing_wheels(Path(args.wheels))
        python_path.insert(0, str(site))
        results['installed'] = names
        if names:
            steps.insert(0, Step('install wheels', install_command(Path(args.wheels), names, site), 120,
                                 essential=True))
    env['PYTHONPATH'] = os.pathsep.join(python_path + [p for p in [os.environ.get('PYTHONPATH')] if p])
    if args.device == 'cuda' and gpus < 2:
        results['nccl_skipped'] = f'needs 2 GPUs, {gpus} visible'
        print(f'nccl training: skipped, {results["nccl_skipped"]}', flush=True)
    stopped = None
    for number, step in enumerate(steps):
        remaining = args.budget - (time.monotonic() - clock)
        if stopped or remaining < 10:
            status = stopped or 'not run: time budget spent'
            results['steps'].append({'name': step.name, 'status': status, 'seconds': 0.0})
            continue
        timeout = min(step.timeout, remaining)
        step_log = work / f'step_{number:02d}.log'
        started_step = time.monotonic()
        code = run_command(step.command, env, step_log, timeout)
        seconds = time.monotonic() - started_step
        with log.open('a') as whole:
            whole.write(f'\n===== {step.name}: {step_status(code, timeout)}, {seconds:.0f} s\n{step_log.read_text()}')
        status = step_status(code, timeout)
        value = read_output(step)
        if value is not None and step.key:
            nested_set(results, step.key, value)
        results['steps'].append({'name': step.name, 'status': status, 'seconds': seconds,
                                 'command': shlex.join(step.command)})
        print(f'{step.name}: {status}, {seconds:.0f} s', flush=True)
        if status != 'ok':
            print('  ' + '\n  '.join(step_log.read_text().splitlines()[-12:]), flush=True)
            if step.essential:
                stopped = f'not run: {step.name} failed'
    results['seconds'] = time.monotonic() - clock
    results['targets'] = targets(results)
    text = summary_text(results)
    write_atomically(out / OUTPUT_FILES[1], json.dumps(results, indent=2))
    write_atomically(out / OUTPUT_FILES[0], text)
    shutil.rmtree(work, ignore_errors=True)
    print('\n' + text, end='')
    return results


if __name__ == '__main__':
    main()
