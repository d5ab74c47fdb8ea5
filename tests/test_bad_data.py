"""Bad data is named: broken, missing, undersized or converted image files in datasets and in preparation."""

import dataclasses
import importlib.util
import io
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import rs_fakes
import torch
from conftest import ROOT
from PIL import Image

from segsr.data.image_files import BadImageFile, read_header
from segsr.data.loaders import build_checked_dataset
from segsr.data.prepare import get_spec, prepare_dataset
from segsr.utils.errors import SegSRError

SIDE, SCALE = 32, 4


def rgb(seed: int, side: int = SIDE) -> np.ndarray:
    return rs_fakes.scene(side, side, seed)


def png_bytes(img: np.ndarray, ext: str = '.png') -> bytes:
    ok, buffer = cv2.imencode(ext, img)
    assert ok
    return buffer.tobytes()


def tiff_bytes(img: np.ndarray) -> bytes:
    """An uncompressed TIFF with its directory first (as PIL writes it), so only the strips are cut short."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format='TIFF')
    return buffer.getvalue()


def truncated(data: bytes) -> bytes:
    return data[:len(data) // 2]


BROKEN = {
    'zero_byte.png': lambda: b'',
    'text.png': lambda: b'just some text, not pixels\n',
    'truncated.png': lambda: truncated(png_bytes(rgb(1))),
    'truncated.jpg': lambda: truncated(png_bytes(rgb(1), '.jpg')),
    'truncated.tif': lambda: truncated(tiff_bytes(rgb(1))),
}


def make_pairs(root: Path, count: int = 4, side: int = SIDE) -> Path:
    """HR/ and LR/ folders of ``count`` 8-bit RGB pairs at SCALE, and a meta file listing them."""
    for index in range(count):
        hr = rgb(index, side)
        (root / 'HR').mkdir(parents=True, exist_ok=True)
        (root / 'LR').mkdir(exist_ok=True)
        cv2.imwrite(str(root / 'HR' / f'img{index}.png'), hr)
        cv2.imwrite(str(root / 'LR' / f'img{index}.png'), cv2.resize(hr, (side // SCALE, side // SCALE)))
    (root / 'meta.txt').write_text(''.join(f'img{index}.png\n' for index in range(count)))
    return root


def paired_opt(root: Path, phase: str = 'val', **extra) -> dict:
    return {'name': 'pairs', 'type': 'RSPairedImageDataset', 'phase': phase, 'scale': SCALE,
            'dataroot_gt': str(root / 'HR'), 'dataroot_lq': str(root / 'LR'), 'io_backend': {'type': 'disk'},
            'gt_size': SIDE, 'use_hflip': False, 'use_rot': False, **extra}


def on_the_fly_opt(root: Path, phase: str = 'train', **extra) -> dict:
    return {'name': 'fly', 'type': 'RSOnTheFlyDataset', 'phase': phase, 'scale': SCALE,
            'dataroot_gt': str(root / 'HR'), 'io_backend': {'type': 'disk'}, 'gt_size': SIDE, **extra}


def check_error(dataset_opt: dict, phase: str = 'train') -> str:
    with pytest.raises(SegSRError) as info:
        build_checked_dataset(dataset_opt, phase)
    message = str(info.value)
    assert '\n' not in message and message.startswith(f'datasets.{phase}: '), message
    return message


# --- one file's header ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(BROKEN))
def test_a_broken_file_is_named_by_its_header_check(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BROKEN[name]())
    with pytest.raises(BadImageFile, match=str(path)):
        read_header(str(path))


def test_missing_files_and_folders_are_named(tmp_path):
    with pytest.raises(BadImageFile, match=f'{tmp_path / "gone.png"} does not exist'):
        read_header(str(tmp_path / 'gone.png'))
    with pytest.raises(BadImageFile, match=f'{tmp_path} is not a file'):
        read_header(str(tmp_path))


def test_good_files_pass_with_their_size_and_traits(tmp_path):
    img = rgb(0, 40)[:, :36]
    cases = {
        'rgb.png': (img, {}),
        'rgb.tif': (img, {}),
        'gray.jpg': (img[..., 0], {'gray': True}),
        'rgba.png': (np.dstack([img, img[..., :1]]), {'alpha': True}),
        'deep.png': (img.astype(np.uint16) * 257, {'high_bit_depth': True}),
        'deep_gray.tif': (img[..., 0].astype(np.uint16) * 257, {'gray': True, 'high_bit_depth': True}),
    }
    for name, (pixels, traits) in cases.items():
        cv2.imwrite(str(tmp_path / name), pixels)
        header = read_header(str(tmp_path / name))
        assert (header.width, header.height) == (36, 40), name
        expected = {'gray': False, 'alpha': False, 'high_bit_depth': False, **traits}
        assert {key: getattr(header, key) for key in expected} == expected, name


def test_bytes_after_the_end_marker_are_not_truncation(tmp_path):
    path = tmp_path / 'padded.png'
    path.write_bytes(png_bytes(rgb(0)) + b'\0' * 5000)
    assert read_header(str(path)).width == SIDE


# --- the dataset check, before a run ----------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(BROKEN))
def test_a_broken_file_in_a_dataset_is_one_line_naming_it(tmp_path, name):
    root = make_pairs(tmp_path)
    bad = root / 'HR' / 'img2.png'
    bad.write_bytes(BROKEN[name]())
    for dataset_opt in (paired_opt(root, 'train'), on_the_fly_opt(root)):
        message = check_error(dataset_opt)
        assert str(bad) in message and 'replace or remove the file' in message


def test_every_bad_file_is_counted_and_the_first_ones_named(tmp_path):
    root = make_pairs(tmp_path, count=6)
    for index in range(5):
        (root / 'LR' / f'img{index}.png').write_bytes(b'')
    message = check_error(paired_opt(root, 'val'), 'val')
    assert all(f'img{index}.png is empty (0 bytes)' in message for index in range(3))
    assert 'and 2 more problems among the 12 listed files' in message


def test_a_meta_info_file_naming_a_missing_file(tmp_path):
    root = make_pairs(tmp_path)
    (root / 'meta.txt').write_text('img0.png\nimg9.png\n')
    message = check_error(paired_opt(root, 'train', meta_info_file=str(root / 'meta.txt')))
    assert f'{root / "HR" / "img9.png"} does not exist' in message and 'meta_info_file' in message
    fly = on_the_fly_opt(root, meta_info_file=str(root / 'meta.txt'))
    with pytest.raises(SegSRError, match='img9.png'):
        build_checked_dataset(fly, 'train')


def test_an_image_smaller_than_the_crop_names_the_file_and_both_sizes(tmp_path):
    root = make_pairs(tmp_path)
    for dataset_opt in (paired_opt(root, 'train', gt_size=48), on_the_fly_opt(root, gt_size=48)):
        message = check_error(dataset_opt)
        assert f'{root / "HR" / "img0.png"} is 32x32, smaller than gt_size 48' in message
        assert 'lower gt_size' in message
    build_checked_dataset(paired_opt(root, 'val', gt_size=48), 'val')  # no crop outside training


def test_an_lr_hr_size_mismatch_names_the_pair_and_both_sizes(tmp_path):
    root = make_pairs(tmp_path)
    cv2.imwrite(str(root / 'LR' / 'img1.png'), rgb(1, 16))
    message = check_error(paired_opt(root, 'val'), 'val')
    assert f'{root / "LR" / "img1.png"} is 16x16 but {root / "HR" / "img1.png"} (32x32) at scale 4 needs 8x8' \
        in message and 'point dataroot_lq' in message


def test_unpaired_files_in_folders_are_named(tmp_path):
    root = make_pairs(tmp_path)
    (root / 'LR' / 'img1.png').rename(root / 'LR' / 'other.png')
    message = check_error(paired_opt(root, 'val'), 'val')
    assert f'1 HR files have no LR file, e.g. {root / "HR" / "img1.png"} (no {root / "LR" / "img1.png"})' in message
    assert f'1 LR files have no HR file, e.g. {root / "LR" / "other.png"}' in message


def test_basicsr_paired_dataset_needs_an_exact_multiple_in_training(tmp_path):
    root = make_pairs(tmp_path)
    cv2.imwrite(str(root / 'HR' / 'img3.png'), rgb(3, 34))  # LR 8x8 still floor(34 / 4)
    build_checked_dataset(paired_opt(root, 'val'), 'val')
    message = check_error({**paired_opt(root, 'train'), 'type': 'PairedImageDataset'})
    assert f'{root / "HR" / "img3.png"} is 34x34 but' in message and 'needs 32x32' in message


def test_mixed_gray_16_bit_and_rgba_give_one_warning_with_counts(tmp_path, caplog):
    root = tmp_path
    (root / 'HR').mkdir()
    images = {'a.png': rgb(0), 'b.png': rgb(1)[..., 0], 'c.png': rgb(2)[..., 0],
              'd.png': rgb(3).astype(np.uint16) * 257, 'e.png': np.dstack([rgb(4), rgb(4)[..., :1]])}
    for name, img in images.items():
        cv2.imwrite(str(root / 'HR' / name), img)
    checked = build_checked_dataset(on_the_fly_opt(root), 'train')
    with caplog.at_level(logging.INFO, logger='check'):
        checked.log_check(logging.getLogger('check'))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith('datasets.train: of 5 images, 2 are gray (read as 3 equal channels), '
                                  '1 have more than 8 bits per sample (reduced to 8 bits: the finer levels are lost), '
                                  '1 have an alpha channel (dropped)')
    assert any('5 files checked' in record.getMessage() for record in caplog.records)
    deep = checked.dataset.paths.index(str(root / 'HR' / 'd.png'))
    levels = checked.dataset[deep]['gt'].numpy() * 255
    np.testing.assert_allclose(levels, levels.round(), atol=1e-3)  # the 16-bit file really arrives as 8-bit levels


def test_an_rgb_set_gives_no_warning(tmp_path):
    assert build_checked_dataset(paired_opt(make_pairs(tmp_path)), 'val').check.warning is None


# --- a file that breaks after the check, mid-run ----------------------------------------------------------------

def test_a_file_broken_after_the_check_is_named_when_read(tmp_path):
    root = make_pairs(tmp_path)
    dataset = build_checked_dataset(paired_opt(root, 'train'), 'train').dataset
    bad = root / 'LR' / 'img1.png'
    bad.write_bytes(truncated(bad.read_bytes()))
    with pytest.raises(SegSRError, match=f'{bad} cannot be decoded as an image'):
        dataset[1]
    (root / 'HR' / 'img2.png').unlink()
    with pytest.raises(SegSRError, match='img2.png cannot be read'):
        dataset[2]


@pytest.mark.parametrize('dataset_type', ['PairedImageDataset', 'SingleImageDataset'])
def test_basicsr_datasets_name_a_file_broken_after_the_check(tmp_path, dataset_type):
    root = make_pairs(tmp_path)
    options = paired_opt(root, 'val', type=dataset_type, filename_tmpl='{}')
    dataset = build_checked_dataset(options, 'val').dataset
    bad = root / 'LR' / 'img1.png'
    bad.write_bytes(truncated(bad.read_bytes()))
    index = next(i for i in range(len(dataset)) if str(bad) in str(dataset.paths[i]))
    with pytest.raises(SegSRError, match=f'{bad} is truncated'):
        dataset[index]
    dataset[(index + 1) % len(dataset)]  # the other items still read


def test_a_read_error_in_a_loader_worker_stays_one_line(tmp_path):
    root = make_pairs(tmp_path)
    dataset = build_checked_dataset(on_the_fly_opt(root, phase='val'), 'val').dataset
    (root / 'HR' / 'img0.png').write_bytes(b'')
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=1)
    with pytest.raises(SegSRError) as info:
        next(iter(loader))
    assert str(info.value) == (f'{root / "HR" / "img0.png"} cannot be decoded as an image (empty, truncated or '
                               'not an image); replace or remove the file, or drop it from the meta_info_file')


# --- prepare_dataset.py -----------------------------------------------------------------------------------------

def prepare_script():
    spec = importlib.util.spec_from_file_location('prepare_dataset_script', ROOT / 'scripts' / 'prepare_dataset.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('scales, words', [([0], 'scale 0 is not possible'), ([-2], 'scale -2 is not possible'),
                                           ([4, 999], 'scale 999 is not possible for AID')])
def test_impossible_scales_are_refused_before_anything_is_written(tmp_path, scales, words):
    rs_fakes.build(tmp_path / 'src.zip', rs_fakes.aid_members({'Airport': 10}), 48)
    with pytest.raises(SegSRError, match=words):
        prepare_dataset('AID', tmp_path / 'src.zip', tmp_path / 'out', scales=tuple(scales), progress=False)
    assert not (tmp_path / 'out').exists()


def test_bad_workers_and_an_output_that_is_a_file_are_refused(tmp_path):
    rs_fakes.build(tmp_path / 'src.zip', rs_fakes.aid_members({'Airport': 10}), 48)
    with pytest.raises(SegSRError, match='workers must be a whole number of at least 1'):
        prepare_dataset('AID', tmp_path / 'src.zip', tmp_path / 'out', workers=0, progress=False)
    (tmp_path / 'taken').write_text('mine')
    with pytest.raises(SegSRError, match='taken exists and is not a folder'):
        prepare_dataset('AID', tmp_path / 'src.zip', tmp_path / 'taken', progress=False)
    assert not (tmp_path / 'out').exists() and (tmp_path / 'taken').read_text() == 'mine'


def test_script_with_scales_0_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys):
    rs_fakes.build(tmp_path / 'src.zip', rs_fakes.aid_members({'Airport': 10}), 48)
    status = prepare_script().main(['AID', '--src', str(tmp_path / 'src.zip'), '--out', str(tmp_path / 'out'),
                                    '--scales', '0'])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ''
    assert captured.err.startswith('error: scale 0 is not possible') and captured.err.count('\n') == 1
    assert not (tmp_path / 'out').exists()


def test_broken_sources_are_named_and_the_rest_prepared(tmp_path):
    members = rs_fakes.aid_members({'Airport': 5})
    rs_fakes.build(tmp_path / 'src', members, 48, as_zip=False)
    broken = {members[1]: b'', members[2]: truncated((tmp_path / 'src' / members[2]).read_bytes())}
    for member, data in broken.items():
        (tmp_path / 'src' / member).write_bytes(data)
    spec = dataclasses.replace(get_spec('AID'), size=48)  # sources at the nominal size: no resizing needed
    manifest = prepare_dataset(spec, tmp_path / 'src', tmp_path / 'out', scales=(2, 4), workers=1, progress=False)
    errors = {item['source']: item['error'] for item in manifest['failed']}
    assert errors == {members[1]: 'is empty (0 bytes)', members[2]: 'is truncated (JPEG without its end marker)'}
    assert manifest['counts']['images'] == 3
    assert sorted(p.name for p in (tmp_path / 'out' / 'HR').iterdir()) == ['airport_1.png', 'airport_4.png',
                                                                           'airport_5.png']
