"""Inference over several processes: torchrun ranks (gloo on CPU), Slurm-style ranks, and --shard job arrays
give outputs identical to one process; a dead rank stops the run; --skip-existing resumes it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from conftest import ROOT
from raster_fakes import smooth, toy_checkpoint, write_raster

from segsr.inference.io.manifest import MANIFEST_NAME

TOY_INFER = str(ROOT / 'tests' / 'infer_with_toys.py')
TILING = ['--tile', '16', '--overlap', '4']
BIG = 'big.tif'


def environment(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(('SLURM_', 'MASTER_'))}
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        env.pop(key, None)
    return {**env, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT), **extra}


def infer(*args, launcher: tuple = (), env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, *launcher, TOY_INFER, *map(str, args)]
    return subprocess.run(command, env=env or environment(), capture_output=True, text=True, timeout=timeout)


def mixed_folder(folder: Path) -> Path:
    """GeoTIFFs of several dtypes (nodata, NaN), PNG and JPEG images, and one scene larger than half of all."""
    folder.mkdir()
    for index, size in enumerate((24, 32, 40)):
        data = np.rint(500 + 3000 * np.stack([smooth(size, size + 8, index + band) for band in range(3)]))
        data[:, :4, :6] = 0
        write_raster(folder / f'u16_{index}.tif', data.astype(np.uint16), nodata=0)
    dem = (50 * smooth(28, 20, 9)).astype(np.float32)[None].repeat(3, 0)
    dem[:, 3:7, 3:7] = np.nan
    write_raster(folder / 'dem.tif', dem)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'photo.png'), rng.integers(0, 256, (20, 28, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'photo.jpg'), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    big = np.rint(4000 * np.stack([smooth(96, 64, 20 + band) for band in range(3)])).astype(np.uint16)
    big[:, 40:50, 10:20] = 0
    write_raster(folder / BIG, big, nodata=0, AREA_OR_POINT='Point')
    return folder


def outputs(folder: Path) -> list[str]:
    """The files under final names (not the manifest, not hidden partial files)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(('segsr-manifest', '.')))


def assert_same_file(one: Path, other: Path) -> None:
    """Values, mask, georeference, profile and metadata (tags, band descriptions) alike."""
    with rasterio.open(one) as a, rasterio.open(other) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        np.testing.assert_array_equal(a.dataset_mask(), b.dataset_mask())
        assert a.profile == b.profile and a.crs == b.crs and a.transform == b.transform
        assert a.tags() == b.tags() and a.descriptions == b.descriptions and a.colorinterp == b.colorinterp
        assert a.tags(ns='IMAGE_STRUCTURE') == b.tags(ns='IMAGE_STRUCTURE') and a.overviews(1) == b.overviews(1)


def manifest(folder: Path, name: str = MANIFEST_NAME) -> dict[str, dict]:
    return {Path(entry['input']).name: entry for entry in json.loads((folder / name).read_text())['inputs']}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The toy checkpoint, the mixed folder and its one-process COG outputs."""
    root = tmp_path_factory.mktemp('dist')
    weights = toy_checkpoint(root / 'toy.pth')
    folder = mixed_folder(root / 'in')
    done = infer('--weights', weights, '--input', folder, '--output', root / 'one', '--cog', *TILING)
    assert done.returncode == 0, done.stderr[-2000:]
    return weights, folder, root / 'one'


def test_torchrun_two_ranks_equal_one_process_with_the_large_scene_split(setup, tmp_path):
    weights, folder, one = setup
    inputs = tmp_path / 'in'
    shutil.copytree(folder, inputs)
    (inputs / 'broken.tif').write_bytes(b'not a tiff')  # fails on its rank; the run goes on
    torchrun = ('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2')
    done = infer('--weights', weights, '--input', inputs, '--output', tmp_path / 'two', '--cog', *TILING,
                 launcher=torchrun)
    assert done.returncode != 0 and 'error: 1 input(s) failed' in done.stderr, done.stderr[-3000:]
    assert outputs(tmp_path / 'two') == outputs(one) == sorted(p.name for p in folder.iterdir())
    for name in outputs(one):
        assert_same_file(one / name, tmp_path / 'two' / name)
    entries = manifest(tmp_path / 'two')
    assert entries.pop('broken.tif')['status'] == 'failed'
    assert {entry['status'] for entry in entries.values()} == {'done'}
    assert entries[BIG]['rank'] in ('0,1', '1,0'), 'the large scene is split over both ranks'
    assert {entries[name]['rank'] for name in entries if name != BIG} == {0, 1}, 'the others are shared out'
    assert done.stderr.count('done 7, skipped 0, failed 1') == 1, 'one summary, from rank 0'


def test_shards_run_as_separate_commands_equal_one_run(setup, tmp_path):
    weights, folder, one = setup
    for shard in ('0/2', '1/2'):
        done = infer('--weights', weights, '--input', folder, '--output', tmp_path / 'shards', '--cog', *TILING,
                     '--shard', shard)
        assert done.returncode == 0, done.stderr[-2000:]
    assert outputs(tmp_path / 'shards') == outputs(one)
    for name in outputs(one):
        assert_same_file(one / name, tmp_path / 'shards' / name)
    first, second = (manifest(tmp_path / 'shards', f'segsr-manifest-shard-{i}-of-2.json') for i in (0, 1))
    assert first and second and not set(first) & set(second) and set(first) | set(second) == set(outputs(one))


def test_a_killed_rank_stops_the_run_and_skip_existing_resumes_it(setup, tmp_path):
    weights, folder, one = setup
    out = tmp_path / 'out'
    port = str(free_port())
    ranks = []
    for rank in (0, 1):
        env = environment(SLURM_PROCID=str(rank), SLURM_NTASKS='2', SLURM_LOCALID=str(rank),
                          SLURM_NODELIST='localhost', MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                          SEGSR_TEST_SLOW_SECONDS='0.3')
        command = [sys.executable, TOY_INFER, '--weights', str(weights), '--input', str(folder), '--output', str(out),
                   *TILING, '--rank-timeout', '3']
        ranks.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(entry['status'] == 'done' for entry in (
            manifest(out).values() if (out / MANIFEST_NAME).exists() else [])):
        time.sleep(0.2)
    assert ranks[0].poll() is None and ranks[1].poll() is None, 'both ranks still running when one is killed'
    ranks[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = ranks[0].communicate(timeout=60)
    ranks[1].communicate()
    assert ranks[0].returncode != 0 and time.monotonic() - killed_at < 20
    assert 'error: rank 1 of 2 stopped responding' in stderr, stderr[-2000:]

    finished = outputs(out)
    done_before = {name for name, entry in manifest(out).items() if entry['status'] == 'done'}
    assert finished and len(finished) < len(outputs(one)), 'the run stopped midway'
    assert done_before <= set(finished)
    modified = {name: (out / name).stat().st_mtime_ns for name in finished}
    for name in finished:  # under a final name only complete files
        np.testing.assert_array_equal(rasterio.open(out / name).read(), rasterio.open(one / name).read())

    resumed = infer('--weights', weights, '--input', folder, '--output', out, *TILING, '--skip-existing')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    entries = manifest(out)
    assert {name for name, entry in entries.items() if entry['status'] == 'skipped'} == set(finished)
    assert {name for name, entry in entries.items() if entry['status'] == 'done'} == set(outputs(one)) - set(finished)
    assert all((out / name).stat().st_mtime_ns == modified[name] for name in finished), 'done files not redone'
    assert sorted(p.name for p in out.iterdir()) == sorted([*outputs(one), MANIFEST_NAME]), 'no partial files left'
    for name in outputs(one):
        np.testing.assert_array_equal(rasterio.open(out / name).read(), rasterio.open(one / name).read())


def test_a_split_scene_keeps_its_spread_raster_and_consistency_report(setup, tmp_path):
    """--uncertainty and --consistency-report on a scene split over two ranks give what one process gives."""
    weights, folder, _ = setup
    inputs = tmp_path / 'in'
    inputs.mkdir()
    shutil.copy(folder / BIG, inputs / BIG)
    flags = ('--uncertainty', '--consistency-report', '--enforce-consistency', *TILING)
    one = infer('--weights', weights, '--input', inputs, '--output', tmp_path / 'one', *flags)
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = ('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2')
    two = infer('--weights', weights, '--input', inputs, '--output', tmp_path / 'two', *flags, launcher=torchrun)
    assert two.returncode == 0, two.stderr[-3000:]
    assert manifest(tmp_path / 'two')[BIG]['rank'] in ('0,1', '1,0'), 'the scene is split over both ranks'
    stem = Path(BIG).stem
    assert outputs(tmp_path / 'two') == outputs(tmp_path / 'one') == sorted(
        [BIG, f'{stem}_uncertainty.tif', f'{stem}_consistency.json'])
    assert_same_file(tmp_path / 'one' / BIG, tmp_path / 'two' / BIG)
    with rasterio.open(tmp_path / 'one' / f'{stem}_uncertainty.tif') as a, \
            rasterio.open(tmp_path / 'two' / f'{stem}_uncertainty.tif') as b:
        spread = a.read()
        np.testing.assert_array_equal(spread, b.read())  # NaN (nodata) where the image is nodata, in both
        assert a.transform == b.transform and a.descriptions == b.descriptions and a.nodata is not None
    assert np.nanmax(spread) > 0
    reports = [json.loads((tmp_path / run / f'{stem}_consistency.json').read_text()) for run in ('one', 'two')]
    assert [report['psnr'] for report in reports] == [reports[0]['psnr']] * 2 and reports[0]['valid_pixels'] > 0


def test_a_scene_split_over_two_ranks_takes_the_checkpoints_contract(setup, tmp_path):
    """Each rank maps its rows through the contract stored in the checkpoint: the assembled scene equals
    ``segsr.load(weights).upscale_file``, and a stretch flag over the contract warns once, not once per rank."""
    import torch
    from raster_fakes import CurvedToySR, register_toy

    import segsr
    from segsr.radiometry.contract import Radiometry

    _, folder, _ = setup
    register_toy()
    contract = Radiometry.from_options({'scale': 1e-4, 'offset': -0.02, 'range': [0.0, 0.5]}, [2, 3, 1])
    weights = tmp_path / 'curved.pth'
    torch.save({'params_ema': CurvedToySR(2, 3).state_dict(), 'radiometry': contract.to_dict(),
                'network_g': {'type': 'CurvedToySR', 'upscale': 2, 'num_in_ch': 3}}, weights)
    inputs = tmp_path / 'in'
    inputs.mkdir()
    shutil.copy(folder / BIG, inputs / BIG)
    torchrun = ('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2')
    two = infer('--weights', weights, '--input', inputs, '--output', tmp_path / 'two', *TILING, launcher=torchrun)
    assert two.returncode == 0, two.stderr[-3000:]
    assert manifest(tmp_path / 'two')[BIG]['rank'] in ('0,1', '1,0'), 'the scene is split over both ranks'
    segsr.load(weights, device='cpu').upscale_file(inputs / BIG, tmp_path / 'api.tif', tile=16, overlap=4)
    with rasterio.open(tmp_path / 'two' / BIG) as split, rasterio.open(tmp_path / 'api.tif') as whole:
        np.testing.assert_array_equal(split.read(), whole.read())
        assert split.tags()['SEGSR_STRETCH'] == f'contract: {contract.describe()}'
    stretched = infer('--weights', weights, '--input', inputs, '--output', tmp_path / 'pct', *TILING,
                      '--stretch', 'percentile', launcher=torchrun)
    assert stretched.returncode == 0, stretched.stderr[-3000:]
    assert stretched.stderr.count('replaces the radiometric contract') == 1


def test_a_split_scene_never_replaces_an_output_that_appears_during_the_run(setup, tmp_path):
    """A report written meanwhile by someone else is kept: the assembling rank refuses to publish over it, the
    scene fails with one line, and neither its image nor any part file is left."""
    weights, folder, _ = setup
    inputs, out = tmp_path / 'in', tmp_path / 'out'
    inputs.mkdir()
    shutil.copy(folder / BIG, inputs / BIG)
    stem = Path(BIG).stem
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', TOY_INFER,
               '--weights', str(weights), '--input', str(inputs), '--output', str(out), '--consistency-report',
               *TILING]
    run = subprocess.Popen(command, env=environment(SEGSR_TEST_SLOW_SECONDS='0.3'), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    parts = []
    while time.monotonic() < deadline and not parts and run.poll() is None:
        parts = [p.name for p in out.glob(f'.{BIG}.segsr-partial-*.band-*-of-2.tif*')] if out.is_dir() else []
        time.sleep(0.05)
    assert parts, 'the ranks write their bands under the one temporary name'
    theirs = out / f'{stem}_consistency.json'
    theirs.write_text('written meanwhile by another run')
    _, stderr = run.communicate(timeout=240)
    assert run.returncode != 0 and f'output {theirs} exists' in stderr, stderr[-3000:]
    assert theirs.read_text() == 'written meanwhile by another run'
    assert outputs(out) == [theirs.name] and not [p for p in out.iterdir() if p.name.startswith('.')]
    assert manifest(out)[BIG]['status'] == 'failed'
