"""Preparation of every supported dataset from fake archives in its real layout."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rs_fakes

import segsr  # noqa: F401
from segsr.data.prepare import DATASETS, get_spec, prepare_dataset
from segsr.data.prepare.specs import SPLIT_PARTS, per_class_counts
from segsr.degradations.bicubic import make_lr_uint8
from segsr.utils.errors import SegSRError
from segsr.utils.files import temporary_path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'scripts' / 'prepare_dataset.py'
SMALL = 48
SCALES = (2, 3, 4, 8)


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    files = (path for path in folder.rglob('*') if path.is_file())
    return {str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes()) for path in files}


def check_images(out: Path, manifest: dict, scales=SCALES) -> None:
    """HR at the recorded size; every LR equals imresize(modcrop(HR)) saved as 8-bit."""
    for name, entry in manifest['images'].items():
        hr = read(out / 'HR' / name)
        assert list(hr.shape[:2]) == entry['size']
        for scale in scales:
            lr = read(out / f'LR_x{scale}' / name)
            assert lr.shape[:2] == (hr.shape[0] // scale, hr.shape[1] // scale)
            np.testing.assert_array_equal(lr, make_lr_uint8(hr, scale))
    for folder in ['HR'] + [f'LR_x{s}' for s in scales]:
        assert sorted(os.listdir(out / folder)) == sorted(manifest['images'])


def check_splits(out: Path, manifest: dict) -> dict:
    """Parts are disjoint, only name prepared images, and match the manifest's counts."""
    splits = {}
    for split_name, summary in manifest['splits'].items():
        parts = {part: (out / 'splits' / split_name / f'{part}.txt').read_text().split() for part in SPLIT_PARTS}
        names = [name for part in parts.values() for name in part]
        assert len(names) == len(set(names))
        assert set(names) <= set(manifest['images'])
        assert {part: len(v) for part, v in parts.items()} == summary['counts']
        splits[split_name] = parts
    return splits


# --- every dataset's layout, through the function ---------------------------------------------------------------

LAYOUTS = {
    'AID': (rs_fakes.aid_members, {'Airport': 10, 'BareLand': 10}),
    'AID-512': (rs_fakes.aid_members, {'Airport': 5, 'Viaduct': 5}),
    'SIRI-WHU': (rs_fakes.siri_whu_members, {'agriculture': 10, 'idle_land': 10}),
    'WHU-RS19': (rs_fakes.whu_rs19_members, {'Airport': 10, 'Beach': 10}),
    'RSSCN7': (rs_fakes.rsscn7_members, {'aGrass': 10, 'bField': 10}),
    'UCMerced': (rs_fakes.ucmerced_members, {'agricultural': 10, 'beach': 10}),
}


def small_spec(name: str):
    spec = dataclasses.replace(get_spec(name), size=SMALL)
    if name == 'AID-512':  # 140 images per class and 600-pixel images are too many for a unit test
        spec = dataclasses.replace(spec, crop=40, splits=(per_class_counts('ttst', 2, 1, 1),))
    return spec


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_each_dataset_layout_is_prepared(tmp_path, name):
    members_of, classes = LAYOUTS[name]
    members = members_of(classes)
    off, bad = members[1], members[-1]
    as_zip = name != 'WHU-RS19'
    src = tmp_path / ('src.zip' if as_zip else 'src')
    src.mkdir(exist_ok=True) if not as_zip else None
    rs_fakes.build(src, members, SMALL, off_size={off: (SMALL - 4, SMALL)}, corrupt=(bad,), as_zip=as_zip)
    spec = small_spec(name)

    manifest = prepare_dataset(spec, src, tmp_path / 'out', workers=1, progress=False)

    out = tmp_path / 'out'
    assert manifest['counts']['images'] == len(members) - 1
    assert manifest['counts']['classes'] == len(classes)
    assert [item['source'] for item in manifest['failed']] == [bad]
    assert [item['source_size'] for item in manifest['off_size']] == [[SMALL - 4, SMALL]]
    side = spec.crop or SMALL
    assert {tuple(entry['size']) for entry in manifest['images'].values()} == {(side, side)}
    labels = {entry['source']: entry['class'] for entry in manifest['images'].values()}
    assert labels == {m: Path(m).parent.name for m in members if m != bad}
    check_images(out, manifest)
    splits = check_splits(out, manifest)
    if name == 'SIRI-WHU':  # stems repeat across classes, so names carry the class
        assert '1.png' not in manifest['images'] and 'idle_land_1.png' in manifest['images']
    if name == 'UCMerced':  # shipped lists, restricted to the images present
        shipped = (REPO / 'segsr/data/splits/UCMerced/transenet/test.txt').read_text().split()
        assert splits['transenet']['test'] == [n for n in shipped if n in manifest['images']]
        assert manifest['splits']['transenet']['origin'] == 'shipped'
    elif name != 'AID-512':  # 80-10-10 of 10 images per class (8/1/1), less the corrupt file wherever it fell
        summary = manifest['splits']['80-10-10']
        assert len(summary['missing']) == 1 and summary['missing'][0] not in manifest['images']
        drawn = {'train': 16, 'val': 2, 'test': 2}
        assert sorted(drawn[part] - n for part, n in summary['counts'].items()) == [0, 0, 1]


def test_keep_off_size_keeps_pixels_and_lr_uses_modcrop(tmp_path):
    members = rs_fakes.rsscn7_members({'aGrass': 3})
    rs_fakes.build(tmp_path / 'src.zip', members, SMALL, off_size={members[0]: (SMALL - 5, SMALL - 2)})
    manifest = prepare_dataset(small_spec('RSSCN7'), tmp_path / 'src.zip', tmp_path / 'out', workers=1,
                               keep_off_size=True, progress=False)
    assert manifest['images']['a001.png']['size'] == [SMALL - 5, SMALL - 2]
    assert manifest['off_size'][0]['action'] == 'kept'
    assert read(tmp_path / 'out/LR_x3/a001.png').shape[:2] == ((SMALL - 5) // 3, (SMALL - 2) // 3)
    check_images(tmp_path / 'out', manifest)


# --- the script, reruns and interruptions -------------------------------------------------------------------------

def ucmerced_zip(path: Path, per_class: int) -> tuple[Path, list[str]]:
    members = rs_fakes.ucmerced_members({'agricultural': per_class, 'beach': per_class})
    corrupt = 'UCMerced_LandUse/Images/beach/beach99.TIF'
    rs_fakes.build(path, members + [corrupt], 256, off_size={members[1]: (247, 256)}, corrupt=(corrupt,))
    return path, members


def run_script(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_script_prepares_ucmerced_and_a_rerun_does_nothing(tmp_path):
    src, members = ucmerced_zip(tmp_path / 'UCMerced_LandUse.zip', 3)
    out = tmp_path / 'datasets' / 'UCMerced'
    proc = run_script('UCMerced', '--src', str(src), '--out', str(out), '--workers', '2')
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # the corrupt file fails; the others are prepared
    assert 'FAILED: UCMerced_LandUse/Images/beach/beach99.TIF: cannot be decoded as an image' in stdout
    assert 'Traceback' not in stderr and stderr.strip().splitlines()[-1].startswith('error: 1 of 7 source images')
    assert 'off-size: agricultural01.png was 256x247, resized to 256x256' in stdout

    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['counts']['per_class'] == {'agricultural': 3, 'beach': 3}
    assert manifest['source']['kind'] == 'zip' and manifest['seed'] == 0 and manifest['scales'] == list(SCALES)
    assert manifest['images']['beach02.png']['class'] == 'beach'
    check_images(out, manifest)
    check_splits(out, manifest)

    before = snapshot(out)
    prepare_dataset('UCMerced', src, out, workers=1, progress=False)
    assert snapshot(out) == before


def test_interrupted_run_finishes_identically(tmp_path):
    src, _ = ucmerced_zip(tmp_path / 'src.zip', 4)
    reference = tmp_path / 'reference'
    prepare_dataset('UCMerced', src, reference, workers=1, progress=False)

    out = tmp_path / 'out'
    proc = run_script('UCMerced', '--src', str(src), '--out', str(out), '--workers', '1', start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list((out / 'LR_x3').glob('*.png')):
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    # a crash mid-write leaves a partial temp file beside finished outputs
    (out / 'LR_x8').mkdir(parents=True, exist_ok=True)
    temporary_path(out / 'LR_x8' / 'beach03.png', proc.pid).write_bytes(b'\x89PNG partial')
    finished = {k: v for k, v in snapshot(out).items() if k.endswith('.png') and not Path(k).name.startswith('.')}

    prepare_dataset('UCMerced', src, out, workers=2, progress=False)

    after = snapshot(out)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in snapshot(reference).items()}
    assert all(after[k] == v for k, v in finished.items())


def test_a_run_with_missing_outputs_recreates_only_those(tmp_path):
    members = rs_fakes.aid_members({'Airport': 4})
    rs_fakes.build(tmp_path / 'src.zip', members, SMALL)
    spec, out = small_spec('AID'), tmp_path / 'out'
    prepare_dataset(spec, tmp_path / 'src.zip', out, workers=1, progress=False)
    reference = snapshot(out)
    (out / 'LR_x4' / 'airport_2.png').unlink()
    (out / 'manifest.json').unlink()
    prepare_dataset(spec, tmp_path / 'src.zip', out, workers=1, progress=False)
    after = snapshot(out)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in reference.items()}
    assert after['LR_x4/airport_1.png'] == reference['LR_x4/airport_1.png']


# --- bad input ------------------------------------------------------------------------------------------------------

def test_bad_sources_raise_one_line_errors(tmp_path):
    with pytest.raises(SegSRError, match='does not exist'):
        prepare_dataset('AID', tmp_path / 'nothing.zip', tmp_path / 'out', progress=False)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SegSRError, match='no images'):
        prepare_dataset('AID', tmp_path / 'empty', tmp_path / 'out', progress=False)
    rs_fakes.build(tmp_path / 'flat.zip', ['airport_1.jpg'], SMALL)
    with pytest.raises(SegSRError, match='class folder'):
        prepare_dataset('AID', tmp_path / 'flat.zip', tmp_path / 'out', progress=False)
    rs_fakes.build(tmp_path / 'few.zip', rs_fakes.aid_members({'Airport': 20}), 8)
    with pytest.raises(SegSRError, match="class 'Airport' has 20 images but split 'ttst' needs 140"):
        prepare_dataset('AID-512', tmp_path / 'few.zip', tmp_path / 'out', progress=False)
    assert not (tmp_path / 'out').exists()


def test_every_dataset_is_registered():
    assert set(DATASETS) == {'UCMerced', 'AID', 'AID-512', 'SIRI-WHU', 'WHU-RS19', 'RSSCN7'}
