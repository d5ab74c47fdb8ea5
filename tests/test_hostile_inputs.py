"""Hostile and careless inputs to every tool: each ends in one line that names the problem (or, for one file of
a folder, in that file being skipped), no traceback, and the input and output folders as they were, except
for what was asked.

Bombs are tiny in bytes (a PNG header that declares a huge image, an alias bomb of a few lines), and limits
that would need large files are lowered through their environment variables.
"""

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import torch
from conftest import TINY_EDSR, eval_options, train_options, write_yaml
from raster_fakes import register_toy, smooth, toy_checkpoint, write_raster
from test_bad_input import _set, expect_cli_error, expect_one_line_error, fill, tree_digest

from scripts.compare_results import main as compare_main
from scripts.prepare_dataset import main as prepare_main
from segsr import evaluation
from segsr.export import main as export_main
from segsr.infer import main as infer_main
from segsr.inference.io.manifest import MANIFEST_NAME
from segsr.self_ensemble import TRANSFORMS
from segsr.training import main as train_main

onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')

# --- files a hostile user would hand over ----------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header (IHDR, CRC fixed) claims ``width`` x ``height``: a decompression bomb's header."""
    ok, buffer = cv2.imencode('.png', np.zeros((1, 1, 3), np.uint8))
    data = bytearray(buffer.tobytes())
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A valid 8x8 JPEG whose frame header (SOF0) claims ``width`` x ``height``."""
    ok, buffer = cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buffer.tobytes())
    frame = data.find(b'\xff\xc0')
    data[frame + 5:frame + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def alias_bomb(levels: int = 6) -> str:
    """Billion laughs: each level is nine aliases of the one before (9**levels strings once built)."""
    lines = ['lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    lines += [f'lol{i}: &lol{i} [{", ".join([f"*lol{i - 1}"] * 9)}]' for i in range(1, levels + 1)]
    return '\n'.join(lines) + '\n'


def deep_yaml(depth: int) -> str:
    return 'deep: ' + '[' * depth + ']' * depth + '\n'


def png(path: Path, height: int = 16, width: int = 12, seed: int = 0) -> Path:
    image = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(path), image)
    return path


def onnx_graph(path: Path, weight: np.ndarray | None = None, metadata: dict | None = None) -> Path:
    """A x2 graph (3x3 convolution, then pixel shuffle) with segsr's metadata, written with onnx's helpers."""
    from onnx import TensorProto, helper, numpy_helper

    if weight is None:
        weight = np.random.default_rng(0).normal(0, 0.3, (12, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node('Conv', ['lr', 'w'], ['features'], pads=[1, 1, 1, 1]),
             helper.make_node('DepthToSpace', ['features'], ['sr'], blocksize=2, mode='CRD')]
    graph = helper.make_graph(nodes, 'toy',
                              [helper.make_tensor_value_info('lr', TensorProto.FLOAT, ['b', 3, 'h', 'w'])],
                              [helper.make_tensor_value_info('sr', TensorProto.FLOAT, ['b', 3, 'H', 'W'])],
                              [numpy_helper.from_array(weight, 'w')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    for key, value in (metadata or {'segsr.scale': '2', 'segsr.in_channels': '3', 'segsr.size_multiple': '1'}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def edsr_checkpoint(path: Path, poison: float | None = None, options: dict | None = None) -> Path:
    """A x2 tiny EDSR checkpoint with its network_g; ``poison`` is written into one weight (NaN, inf)."""
    from basicsr.archs import build_network

    network_options = options or {**TINY_EDSR, 'upscale': 2}
    torch.manual_seed(0)
    state = build_network({**TINY_EDSR, 'upscale': 2}).state_dict()
    if poison is not None:
        state['conv_first.weight'][0, 0, 0, 0] = poison
    torch.save({'params': state, 'params_ema': state, 'network_g': network_options}, path)
    return path


def huge_vrt(path: Path, side: int) -> Path:
    """A one-band byte raster of ``side`` x ``side`` pixels in a few hundred bytes (no data behind it)."""
    path.write_text(f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}"><SRS>EPSG:32633</SRS>'
                    '<GeoTransform>500000, 10, 0, 5000000, 0, -10</GeoTransform>'
                    '<VRTRasterBand dataType="Byte" band="1"><NoDataValue>0</NoDataValue></VRTRasterBand></VRTDataset>')
    return path


def free_bytes(folder: Path) -> int:
    import shutil

    return shutil.disk_usage(folder).free


# --- segsr-infer: one line, nothing written ------------------------------------------------------------------


def _infer_case(kind: str, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment)`` of one hostile segsr-infer run; inputs under ``tmp / 'in'``."""
    inputs = tmp / 'in'
    inputs.mkdir()
    scene = png(inputs / 'scene.png')
    out = ['--output', str(tmp / 'out')]
    weights = ['--weights', str(edsr_checkpoint(inputs / 'net.pth')), '--device', 'cpu']
    if kind == 'onnx_nan_weights':
        weight = np.ones((12, 3, 3, 3), np.float32)
        weight[0, 0, 0, 0] = np.nan
        return ['--onnx', str(onnx_graph(inputs / 'm.onnx', weight)), '--input', str(scene), *out], {}
    if kind.startswith('onnx_metadata'):
        metadata = {'segsr.scale': '2', 'segsr.in_channels': '3', 'segsr.size_multiple': '1'}
        metadata.update({'onnx_metadata_text': {'segsr.scale': 'x4; rm -rf /'},
                         'onnx_metadata_channels': {'segsr.in_channels': '1000000000'},
                         'onnx_metadata_multiple': {'segsr.size_multiple': '99999999'},
                         'onnx_metadata_scale': {'segsr.scale': '3'}}[kind])
        return ['--onnx', str(onnx_graph(inputs / 'm.onnx', metadata=metadata)), '--input', str(scene), *out], {}
    if kind in ('torch_nan_weights', 'torch_inf_weights'):
        poison = math.nan if kind == 'torch_nan_weights' else math.inf
        return ['--weights', str(edsr_checkpoint(inputs / 'bad.pth', poison)), '--input', str(scene), *out], {}
    if kind == 'complex_raster':
        raster = write_raster(inputs / 'sar.tif', (smooth(16, 16) + 1j * smooth(16, 16, 1)).astype(np.complex64)[None])
        return [*weights, '--input', str(raster), *out], {}
    if kind in ('opt_duplicate_key', 'opt_alias_bomb', 'opt_deep', 'opt_self_alias'):
        text = {'opt_duplicate_key': f'network_g: {dict(TINY_EDSR, upscale=2)}\nnetwork_g: {{type: HAT}}\n',
                'opt_alias_bomb': alias_bomb(), 'opt_deep': deep_yaml(3000), 'opt_self_alias': 'a: &a [1, *a]\n'}[kind]
        (inputs / 'o.yml').write_text(text)
        return [*weights, '--opt', str(inputs / 'o.yml'), '--input', str(scene), *out], {}
    if kind == 'blocksize_16384':
        return [*weights, '--input', str(scene), '--blocksize', '16384', *out], {}
    if kind == 'tile_huge':
        return [*weights, '--input', str(scene), '--tile', '100000', *out], {}
    if kind == 'batch_huge':
        return [*weights, '--input', str(scene), '--batch', '1000000', *out], {}
    if kind in ('png_bomb', 'jpeg_bomb'):
        bomb = inputs / ('bomb.png' if kind == 'png_bomb' else 'bomb.jpg')
        bomb.write_bytes(png_declaring(200_000, 200_000) if kind == 'png_bomb' else jpeg_declaring(60_000, 60_000))
        return [*weights, '--input', str(bomb), *out], {}
    if kind == 'png_output_too_large':
        return [*weights, '--input', str(scene), *out], {'SEGSR_MAX_IMAGE_PIXELS': '400'}
    if kind == 'output_beyond_free_disk':
        side = math.isqrt(64 * free_bytes(tmp)) // 2 + 1  # x2 output, 8x compressed, still 2x the free space
        return [*weights, '--input', str(huge_vrt(inputs / 'sparse.vrt', side)), *out], {}
    if kind == 'checkpoint_unknown_network_key':
        bad = edsr_checkpoint(inputs / 'typo.pth', options={**TINY_EDSR, 'upscale': 2, 'num_fet': 8})
        return ['--weights', str(bad), '--input', str(scene), *out], {}
    if kind == 'checkpoint_network_value':
        bad = edsr_checkpoint(inputs / 'five.pth', options={**TINY_EDSR, 'upscale': 5})
        return ['--weights', str(bad), '--input', str(scene), *out], {}
    raise AssertionError(kind)


INFER_CASES = [
    ('onnx_nan_weights', ('m.onnx', 'NaN or infinite')),
    ('onnx_metadata_text', ('m.onnx', 'scale', 'not a whole number')),
    ('onnx_metadata_channels', ('in_channels', '1000000000', 'not a whole number from 1 to 64')),
    ('onnx_metadata_multiple', ('size_multiple', 'not a whole number')),
    ('onnx_metadata_scale', ('m.onnx', 'x3 as its metadata says')),
    ('torch_nan_weights', ('bad.pth', 'NaN or infinite weights', 'conv_first.weight')),
    ('torch_inf_weights', ('bad.pth', 'NaN or infinite weights')),
    ('complex_raster', ('sar.tif', 'complex values', 'complex64')),
    ('opt_duplicate_key', ('o.yml', 'line 2', 'key "network_g" is given twice')),
    ('opt_alias_bomb', ('o.yml', 'aliases expanded', 'SEGSR_MAX_YAML_NODES')),
    ('opt_deep', ('o.yml', 'too deeply')),
    ('opt_self_alias', ('o.yml', 'alias refers to', 'contains it')),
    ('blocksize_16384', ('--blocksize 16384', 'limit of 4,096', 'SEGSR_MAX_BLOCKSIZE')),
    ('tile_huge', ('--tile 100000', 'SEGSR_MAX_CALL_PIXELS')),
    ('batch_huge', ('--batch 1000000', 'SEGSR_MAX_CALL_PIXELS')),
    ('png_bomb', ('bomb.png', '200000x200000', 'SEGSR_MAX_IMAGE_PIXELS')),
    ('jpeg_bomb', ('bomb.jpg', '60000x60000', 'SEGSR_MAX_IMAGE_PIXELS')),
    ('png_output_too_large', ('x2 output of', 'scene.png', 'SEGSR_MAX_IMAGE_PIXELS')),
    ('output_beyond_free_disk', ('sparse.vrt', 'free', '--output')),
    ('checkpoint_unknown_network_key', ('typo.pth', 'num_fet', 'unknown key', 'did you mean "num_feat"')),
    ('checkpoint_network_value', ('five.pth', 'cannot build EDSR', '--opt')),
]


@pytest.mark.parametrize('kind, keywords', INFER_CASES, ids=[case[0] for case in INFER_CASES])
def test_infer_refuses_in_one_line(tmp_path, capsys, monkeypatch, kind, keywords):
    argv, environment = _infer_case(kind, tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    expect_one_line_error(infer_main, argv, tmp_path, keywords, capsys)
    assert not (tmp_path / 'out').exists()


def test_infer_onnx_self_ensemble_averages_the_eight_transforms(tmp_path):
    """With --overlap 0 the one tile is the whole image, so the graph sees what a direct session call sees."""
    scene = png(tmp_path / 'scene.png', 12, 10)
    graph = onnx_graph(tmp_path / 'm.onnx')
    infer_main(['--onnx', str(graph), '--input', str(scene), '--output', str(tmp_path / 'plain'), '--overlap', '0'])
    infer_main(['--onnx', str(graph), '--input', str(scene), '--output', str(tmp_path / 'ensemble'), '--overlap', '0',
                '--self-ensemble'])
    session = onnxruntime.InferenceSession(str(graph), providers=['CPUExecutionProvider'])
    lr = cv2.cvtColor(cv2.imread(str(scene)), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None].astype(np.float32) / 255
    outputs = []
    for mirror, turns in TRANSFORMS:
        moved = np.rot90(lr[..., ::-1] if mirror else lr, turns, axes=(2, 3))
        back = np.rot90(session.run(None, {'lr': np.ascontiguousarray(moved)})[0], -turns, axes=(2, 3))
        outputs.append(back[..., ::-1] if mirror else back)
    expected = np.clip(np.mean(outputs, axis=0)[0] * 255, 0, 255).transpose(1, 2, 0)
    found = cv2.cvtColor(cv2.imread(str(tmp_path / 'ensemble' / 'scene.png')), cv2.COLOR_BGR2RGB).astype(float)
    plain = cv2.cvtColor(cv2.imread(str(tmp_path / 'plain' / 'scene.png')), cv2.COLOR_BGR2RGB).astype(float)
    assert np.abs(found - expected).max() <= 1
    assert np.abs(plain - expected).max() > 4, 'the flag changed nothing'


def test_infer_folder_skips_the_bomb_and_runs_the_rest(tmp_path, capsys):
    inputs = tmp_path / 'in'
    inputs.mkdir()
    png(inputs / 'a.png')
    png(inputs / 'c.png', seed=1)
    (inputs / 'b.png').write_bytes(png_declaring(100_000, 100_000))
    weights = edsr_checkpoint(tmp_path / 'net.pth')
    before = tree_digest(inputs)
    with pytest.raises(SystemExit) as stop:
        infer_main(['--weights', str(weights), '--device', 'cpu', '--input', str(inputs), '--output',
                    str(tmp_path / 'out')])
    message = str(stop.value.code)
    err = capsys.readouterr().err
    assert 'Traceback' not in err and '\n' not in message
    assert '1 input(s) failed' in message and 'b.png' in message and 'SEGSR_MAX_IMAGE_PIXELS' in message
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a.png', 'c.png', MANIFEST_NAME]
    assert tree_digest(inputs) == before


@pytest.mark.parametrize('as_glob', [False, True], ids=['folder', 'glob'])
def test_infer_recursive_walk_ends_on_symlink_loops(tmp_path, as_glob):
    inputs = tmp_path / 'in'
    (inputs / 'sub').mkdir(parents=True)
    png(inputs / 'a.png')
    png(inputs / 'sub' / 'b.png', seed=1)
    for name in ('up', 'again'):  # two links to the root: a walk without memory grows as 2**depth
        os.symlink(inputs, inputs / 'sub' / name)
    weights = edsr_checkpoint(tmp_path / 'net.pth')
    before = tree_digest(inputs / 'sub')
    source = str(inputs / '**' / '*.png') if as_glob else str(inputs)
    infer_main(['--weights', str(weights), '--device', 'cpu', '--input', source, '--recursive', '--output',
                str(tmp_path / 'out')])
    written = sorted(p.relative_to(tmp_path / 'out').as_posix() for p in (tmp_path / 'out').rglob('*.png'))
    assert written == (['a.png', 'b.png'] if as_glob else ['a.png', 'sub/b.png'])
    assert before == tree_digest(inputs / 'sub')


@pytest.mark.parametrize('pattern', ['**/*.png', 'sub/**/*.jpg', '**/[ab].png', '**/?.png', '*/b.png', '**'])
def test_recursive_glob_finds_what_glob_finds_where_there_are_no_links(tmp_path, pattern):
    from segsr.utils.walk import glob_files

    for name in ('a.png', 'sub/b.png', 'sub/deep/c.jpg', 'sub/deep/ab.png', '.hidden/d.png', 'sub/e.PNG'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    import glob

    expected = sorted(p for p in glob.glob(str(tmp_path / pattern), recursive=True) if Path(p).is_file())
    assert sorted(p for p in glob_files(str(tmp_path / pattern), recursive=True) if Path(p).is_file()) == expected


def test_infer_announces_a_long_run_with_its_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('SEGSR_WARN_CALLS', '3')
    scene = png(tmp_path / 'scene.png', 40, 40)
    infer_main(['--weights', str(edsr_checkpoint(tmp_path / 'net.pth')), '--device', 'cpu', '--input', str(scene),
                '--output', str(tmp_path / 'out'), '--tile', '16', '--overlap', '4'])
    warning = next(line for line in capsys.readouterr().err.splitlines() if line.startswith('warning: '))
    assert 'takes 9 network calls' in warning and 'SEGSR_WARN_CALLS=3' in warning and 'hours' in warning
    assert (tmp_path / 'out' / 'scene.png').is_file()


def test_infer_full_disk_while_building_cog_overviews(tmp_path, small_disk, capsys):
    register_toy()
    noise = np.random.default_rng(0).integers(0, 255, (3, 128, 128), dtype=np.uint8)  # does not compress
    source = write_raster(tmp_path / 'noise.tif', noise)
    weights = toy_checkpoint(tmp_path / 'toy.pth')
    fill(small_disk, leave=300 * 1024)
    with pytest.raises(SystemExit) as stop:
        infer_main(['--weights', str(weights), '--device', 'cpu', '--input', str(source), '--output',
                    str(small_disk / 'out'), '--cog'])
    message = str(stop.value.code)
    assert 'Traceback' not in capsys.readouterr().err and '\n' not in message
    assert f'cannot write raster {small_disk / "out" / "noise.tif"} (' in message and 'MiB free' in message
    assert [p.name for p in (small_disk / 'out').glob('*')] == [MANIFEST_NAME], 'no partial file is left'
    assert not list(small_disk.glob('.*partial*'))


# --- segsr-export ---------------------------------------------------------------------------------------------


EXPORT_CASES = [
    ('nan_weights', math.nan, None, ('bad.pth', 'NaN or infinite weights')),
    ('inf_weights', -math.inf, None, ('bad.pth', 'NaN or infinite weights')),
    ('unknown_network_key', None, {**TINY_EDSR, 'upscale': 2, 'window_szie': 8}, ('window_szie', 'unknown key')),
]


@pytest.mark.parametrize('poison, options, keywords', [case[1:] for case in EXPORT_CASES],
                         ids=[case[0] for case in EXPORT_CASES])
def test_export_refuses_in_one_line(tmp_path, capsys, poison, options, keywords):
    weights = edsr_checkpoint(tmp_path / 'bad.pth', poison, options)
    expect_one_line_error(export_main, ['--weights', str(weights), '--output', str(tmp_path / 'm.onnx')], tmp_path,
                          keywords, capsys)


def test_export_full_disk_is_one_line(tmp_path, small_disk, capsys):
    weights = edsr_checkpoint(tmp_path / 'net.pth')
    fill(small_disk, leave=4096)
    before = tree_digest(small_disk)
    expect_one_line_error(export_main, ['--weights', str(weights), '--output', str(small_disk / 'm.onnx')],
                          tmp_path, ('cannot write ONNX graph', 'm.onnx', 'MiB free'), capsys)
    assert tree_digest(small_disk) == before


def test_export_refuses_a_graph_that_differs_with_nan():
    from segsr.export import MIN_PSNR_DB, psnr

    nan = np.full((1, 3, 4, 4), np.nan, np.float32)
    assert not psnr(nan, np.zeros_like(nan)) >= MIN_PSNR_DB  # the check the export makes


# --- compare_results.py -----------------------------------------------------------------------------------------


GOOD = {'name': 'r', 'network': 'EDSR', 'scale': 4, 'dataset': 'd', 'protocol': {'text': 'Y'}, 'params': 1,
        'trainable_params': 1, 'average': {'psnr': 25.0, 'ssim': 0.7},
        'images': [{'image': 'a', 'psnr': 25.0, 'ssim': 0.7}]}


def _with(**changes) -> str:
    import json

    return json.dumps({**GOOD, **changes})


RESULT_CASES = [
    ('malformed', b'{"name": ', ('bad.json', 'not a readable JSON file', 'line 1')),
    ('truncated', _with()[:-40].encode(), ('bad.json', 'not a readable JSON file')),
    ('empty', b'', ('bad.json', 'not a readable JSON file')),
    ('not_utf8', '{"name": "caf\xe9"}'.encode('latin-1'), ('bad.json', 'not UTF-8')),
    ('deep_recursion', b'[' * 200_000 + b']' * 200_000, ('bad.json', 'too deeply')),
    ('deep_limit', b'{"a": ' + b'[' * 100 + b']' * 100 + b'}', ('bad.json', 'nesting', 'SEGSR_MAX_NESTING')),
    ('list', b'[1, 2]', ('bad.json', 'JSON list', 'not a results object')),
    ('missing_keys', b'{"name": "x"}', ('bad.json', 'lacks network, scale')),
    ('scale_text', _with(scale='4').encode(), ('scale: expected a positive whole number',)),
    ('scale_list', _with(scale=[4]).encode(), ('scale: expected',)),
    ('scale_bool', _with(scale=True).encode(), ('scale: expected',)),
    ('network_number', _with(network=5).encode(), ('network: expected',)),
    ('params_text', _with(params='many').encode(), ('params: expected a count',)),
    ('average_list', _with(average=[25.0]).encode(), ('average: expected',)),
    ('psnr_text', _with(average={'psnr': 'high'}).encode(), ('average: expected',)),
    ('psnr_nan', _with(average={'psnr': float('nan')}).encode(), ('finite psnr',)),
    ('protocol_number', _with(protocol=3).encode(), ('protocol: expected',)),
    ('images_mapping', _with(images={'a': 1}).encode(), ('images: expected a list',)),
    ('image_without_name', _with(images=[{'psnr': 1.0}]).encode(), ('images[0]', 'image name')),
    ('image_twice', _with(images=[GOOD['images'][0]] * 2).encode(), ('listed twice',)),
    ('image_class_number', _with(images=[{'image': 'a', 'psnr': 1.0, 'class': 3}]).encode(), ('images[0].class',)),
]


@pytest.mark.parametrize('content, keywords', [case[1:] for case in RESULT_CASES],
                         ids=[case[0] for case in RESULT_CASES])
def test_compare_results_refuses_bad_results_in_one_line(tmp_path, capsys, content, keywords):
    (tmp_path / 'in').mkdir()
    bad = tmp_path / 'in' / 'bad.json'
    bad.write_bytes(content)
    expect_one_line_error(compare_main, [str(bad), '--out', str(tmp_path / 'out')], tmp_path, keywords, capsys)


def test_compare_results_refuses_an_oversized_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('SEGSR_MAX_FILE_BYTES', '100')
    (tmp_path / 'big.json').write_text(_with(name='x' * 200))
    expect_one_line_error(compare_main, [str(tmp_path / 'big.json'), '--out', str(tmp_path / 'out')], tmp_path,
                          ('big.json', 'SEGSR_MAX_FILE_BYTES'), capsys)


def test_compare_results_out_that_is_a_file(tmp_path, capsys):
    import json

    for name, network in (('plain', 'EDSR'), ('guided', 'GuidedEDSR')):
        (tmp_path / f'{name}.json').write_text(json.dumps({**GOOD, 'name': name, 'network': network}))
    (tmp_path / 'out').write_text('a file, not a folder')
    expect_one_line_error(compare_main, [str(tmp_path / 'plain.json'), str(tmp_path / 'guided.json'), '--out',
                                         str(tmp_path / 'out')], tmp_path, ('cannot write into', 'out'), capsys)


# --- test.py and train.py: options -------------------------------------------------------------------------------


OPTION_CASES = [  # (id, change to the options or YAML text appended to the file, key words): train.py and test.py
    ('seed_negative', _set('manual_seed', -1), ('manual_seed', 'between 0 and 4294967295')),
    ('seed_too_large', _set('manual_seed', 2**32), ('manual_seed', '4294967296')),
    ('metric_unknown', _set('val.metrics', {'psnr': {'type': 'calculate_psrn'}}),
     ('val.metrics.psnr.type', 'unknown metric type "calculate_psrn"', 'calculate_psnr')),
    ('tile_huge', _set('tile', {'tile_size': 100_000, 'tile_pad': 0}), ('tile_size', 'SEGSR_MAX_CALL_PIXELS')),
    ('duplicate_key', 'scale: 4\n', ('line', 'key "scale" is given twice')),
    ('alias_bomb', alias_bomb(), ('aliases expanded', 'SEGSR_MAX_YAML_NODES')),
    ('deep_recursion', deep_yaml(3000), ('too deeply',)),
    ('deep_limit', deep_yaml(100), ('100 levels', 'SEGSR_MAX_NESTING')),
]
TRAIN_ONLY_CASES = [
    ('optimizer_not_offered', _set('train.optim_g', {'type': 'LBFGS', 'lr': 1e-3}),
     ('train.optim_g.type', "unknown optimiser 'LBFGS'", 'Adam')),
    ('optimizer_typo', _set('train.optim_g', {'type': 'Adamm', 'lr': 1e-3}),
     ("unknown optimiser 'Adamm'", 'did you mean "Adam"')),
    ('optimizer_bad_beta', _set('train.optim_g.betas', [2.0, 0.99]), ('train.optim_g', 'Adam refuses', 'beta')),
    ('optimizer_bad_key', _set('train.optim_g.momentum', 0.9), ('train.optim_g', 'Adam refuses', 'momentum')),
    ('crop_huge', _set('datasets.train.gt_size', 100_000), ('gt_size^2', 'SEGSR_MAX_BATCH_PIXELS')),
    ('batch_huge', _set('datasets.train.batch_size_per_gpu', 10**9), ('batch_size_per_gpu', 'SEGSR_MAX_BATCH_PIXELS')),
]


def _option_file(path: Path, options: dict, change) -> Path:
    if isinstance(change, str):
        write_yaml(path, options)
        path.write_text(path.read_text() + change)
    else:
        change(options)
        write_yaml(path, options)
    return path


@pytest.mark.parametrize('change, keywords', [case[1:] for case in OPTION_CASES + TRAIN_ONLY_CASES],
                         ids=[case[0] for case in OPTION_CASES + TRAIN_ONLY_CASES])
def test_train_refuses_options_in_one_line(demo_data, tmp_path, capsys, earlier_run, change, keywords):
    opt_file = _option_file(tmp_path / 'o.yml', train_options(demo_data, 'bad'), change)
    expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(tmp_path)], earlier_run, keywords, capsys)


@pytest.mark.parametrize('change, keywords', [case[1:] for case in OPTION_CASES],
                         ids=[case[0] for case in OPTION_CASES])
def test_test_py_refuses_options_in_one_line(demo_data, tmp_path, capsys, change, keywords):
    options = eval_options(demo_data, 'bad', tmp_path / 'w.pth')
    options.setdefault('val', {})
    opt_file = _option_file(tmp_path / 't.yml', options, change)
    expect_one_line_error(evaluation.main, ['-opt', str(opt_file), '--root', str(tmp_path)], tmp_path, keywords,
                          capsys)
    assert not (tmp_path / 'results').exists()


def test_test_py_batch_huge(demo_data, tmp_path, capsys):
    options = eval_options(demo_data, 'bad', tmp_path / 'w.pth')
    options['datasets']['test_1']['batch_size_per_gpu'] = 10**9
    expect_one_line_error(evaluation.main, ['-opt', str(write_yaml(tmp_path / 't.yml', options)), '--root',
                                            str(tmp_path)], tmp_path, ('datasets.test_1.batch_size_per_gpu',
                                                                       'SEGSR_MAX_BATCH_PIXELS'), capsys)


def test_test_py_refuses_a_decompression_bomb_in_the_dataset(demo_data, tmp_path, capsys):
    import shutil

    data = tmp_path / 'data'
    shutil.copytree(demo_data, data)
    bomb = data / 'HR' / 'val' / 'coins_01.png'
    bomb.write_bytes(png_declaring(200_000, 200_000))
    options = eval_options(data, 'bomb', tmp_path / 'w.pth')
    expect_one_line_error(evaluation.main, ['-opt', str(write_yaml(tmp_path / 't.yml', options)), '--root',
                                            str(tmp_path)], tmp_path,
                          ('datasets.test_1', f'{bomb} (200000x200000)', 'SEGSR_MAX_IMAGE_PIXELS'), capsys)


# --- train.py: resuming from a state that does not fit, and a crash after the folder exists --------------------


@pytest.fixture(scope='module')
def trained(demo_data, tmp_path_factory) -> Path:
    """Two finished 2-iteration runs: ``small`` (EDSR, 8 features) and ``wide`` (16 features: the same number
    of tensors in other shapes)."""
    root = tmp_path_factory.mktemp('trained')
    for name, features in (('small', 8), ('wide', 16)):
        options = train_options(demo_data, name, {**TINY_EDSR, 'num_feat': features})
        options['logger']['use_tb_logger'] = False
        train_main(['-opt', str(write_yaml(root / f'{name}.yml', options)), '--root', str(root)])
    return root


def _sgd_state(trained: Path) -> Path:
    """The state of ``small`` with its Adam state replaced by an SGD state of the same parameters."""
    from basicsr.archs import build_network

    state = torch.load(trained / 'experiments' / 'small' / 'training_states' / '2.state', weights_only=True)
    params = list(build_network(dict(TINY_EDSR)).parameters())
    sgd = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    sum(p.sum() for p in params).backward()
    sgd.step()
    state['optimizers'] = [sgd.state_dict()]
    path = trained / 'sgd.state'
    torch.save(state, path)
    return path


@pytest.mark.parametrize('case', ['another_network', 'another_optimizer', 'not_a_state'])
def test_train_resume_from_a_state_that_does_not_fit(demo_data, trained, capsys, case):
    name, features = ('wide', 16) if case == 'another_network' else ('small', 8)
    state = {'another_network': trained / 'experiments' / 'small' / 'training_states' / '2.state',
             'another_optimizer': _sgd_state(trained),
             'not_a_state': trained / 'experiments' / 'small' / 'models' / 'net_g_2.pth'}[case]
    options = train_options(demo_data, name, {**TINY_EDSR, 'num_feat': features}, total_iter=3)
    options['logger']['use_tb_logger'] = False
    options['path']['resume_state'] = str(state)
    keywords = {'another_network': ('2.state', 'does not fit this run', 'another network'),
                'another_optimizer': ('sgd.state', 'another optimiser', 'momentum'),
                'not_a_state': ('net_g_2.pth', 'is not a training state')}[case]
    opt_file = write_yaml(trained / f'resume_{case}.yml', options)
    expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(trained)], trained / 'experiments',
                          keywords, capsys)


def test_train_crash_after_the_folder_exists_leaves_the_earlier_run_as_it_was(demo_data, tmp_path, small_disk,
                                                                               capsys):
    """A fresh start on a full disk: the folder is made (the earlier run archived), then the first checkpoint
    cannot be written. The half-made folder goes and the earlier run is back under its name."""
    experiments = small_disk / 'experiments'
    (experiments / 'bad' / 'models').mkdir(parents=True)
    (experiments / 'bad' / 'models' / 'net_g_2.pth').write_bytes(b'weights of an earlier run')
    options = train_options(demo_data, 'bad', total_iter=1)
    options['logger']['use_tb_logger'] = False
    options['val']['val_freq'] = None
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    fill(small_disk, leave=24 * 1024)  # room for the folders and the log, not for a checkpoint
    expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(small_disk)], experiments,
                          ('No space left on device', 'saved no checkpoint', 'was removed'), capsys)
    assert sorted(p.name for p in experiments.iterdir()) == ['bad']


# --- prepare_dataset.py --------------------------------------------------------------------------------------------


@pytest.mark.parametrize('case', ['zip_member_over_limit', 'png_bomb_member', 'folder_file_over_limit'])
def test_prepare_dataset_skips_the_file_over_a_limit(tmp_path, capsys, monkeypatch, case):
    import rs_fakes

    members = rs_fakes.ucmerced_members({'agricultural': 2, 'beach': 2})
    bad = 'UCMerced_LandUse/Images/beach/beach99.tif'
    as_zip = case != 'folder_file_over_limit'
    src = tmp_path / ('src.zip' if as_zip else 'src')
    if not as_zip:
        src.mkdir()
    rs_fakes.build(src, members, 64, as_zip=as_zip)
    if case == 'png_bomb_member':
        with zipfile.ZipFile(src, 'a') as archive:
            archive.writestr(bad, png_declaring(300_000, 300_000))
        keywords = ('FAILED', 'beach99.tif', '300000x300000', 'SEGSR_MAX_IMAGE_PIXELS')
    else:
        monkeypatch.setenv('SEGSR_MAX_FILE_BYTES', str(2 * 2**20))
        zeros = bytes(3 * 2**20)  # 3 MiB that deflate to a few KiB: a zip bomb in small
        if as_zip:
            with zipfile.ZipFile(src, 'a', compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(bad, zeros)
        else:
            (src / bad).write_bytes(zeros)
        keywords = ('FAILED', 'beach99.tif', '3,145,728 bytes', 'SEGSR_MAX_FILE_BYTES')
    before = tree_digest(src) if not as_zip else src.read_bytes()
    code = prepare_main(['UCMerced', '--src', str(src), '--out', str(tmp_path / 'out'), '--workers', '1'])
    captured = capsys.readouterr()
    assert code == 1 and 'Traceback' not in captured.out + captured.err
    failed = [line for line in captured.out.splitlines() if 'FAILED' in line]
    assert len(failed) == 1 and all(word in failed[0] for word in keywords), failed
    assert captured.err.strip().splitlines()[-1].startswith('error: 1 of 5 source images failed')
    assert len(list((tmp_path / 'out' / 'HR').iterdir())) == 4
    assert (tree_digest(src) if not as_zip else src.read_bytes()) == before


# --- the limits themselves -------------------------------------------------------------------------------------


def test_a_limit_set_to_nonsense_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('SEGSR_MAX_BLOCKSIZE', 'lots')
    scene = png(tmp_path / 'scene.png')
    expect_one_line_error(infer_main, ['--weights', str(edsr_checkpoint(tmp_path / 'n.pth')), '--input', str(scene),
                                       '--output', str(tmp_path / 'out'), '--blocksize', '256'], tmp_path,
                          ('SEGSR_MAX_BLOCKSIZE', 'not a positive whole number'), capsys)


def test_a_raised_limit_lets_the_input_through(tmp_path, monkeypatch):
    scene = png(tmp_path / 'scene.png', 16, 16)
    monkeypatch.setenv('SEGSR_MAX_IMAGE_PIXELS', '100')
    with pytest.raises(SystemExit) as stop:
        infer_main(['--weights', str(edsr_checkpoint(tmp_path / 'n.pth')), '--device', 'cpu', '--input', str(scene),
                    '--output', str(tmp_path / 'refused')])
    assert 'is 256 pixels, over the limit of 100' in str(stop.value.code)
    monkeypatch.setenv('SEGSR_MAX_IMAGE_PIXELS', '1024')
    infer_main(['--weights', str(edsr_checkpoint(tmp_path / 'n.pth')), '--device', 'cpu', '--input', str(scene),
                '--output', str(tmp_path / 'out')])
    assert cv2.imread(str(tmp_path / 'out' / 'scene.png')).shape == (32, 32, 3)


def test_train_py_program_refuses_an_alias_bomb(demo_data, tmp_path, earlier_run):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'bad'))
    opt_file.write_text(opt_file.read_text() + alias_bomb(8))
    expect_cli_error('train.py', ['-opt', str(opt_file), '--root', str(tmp_path)], earlier_run,
                     ('o.yml', 'SEGSR_MAX_YAML_NODES'))


def test_an_ordinary_geotiff_passes_the_budget_check(tmp_path):
    """A control: an ordinary GeoTIFF still goes through the budget check and comes out georeferenced."""
    source = write_raster(tmp_path / 'ok.tif', np.rint(200 * smooth(24, 24)).astype(np.uint8)[None].repeat(3, 0))
    infer_main(['--weights', str(edsr_checkpoint(tmp_path / 'n.pth')), '--device', 'cpu', '--input', str(source),
                '--output', str(tmp_path / 'out')])
    with rasterio.open(tmp_path / 'out' / 'ok.tif') as dataset:
        assert dataset.shape == (48, 48) and dataset.crs.to_epsg() == 32633


def test_yaml_bomb_is_measured_not_built(tmp_path):
    """Twelve levels of nine aliases (9**13 strings once built) are counted, not built, and refused."""
    from segsr.options.safe_yaml import load_option_file
    from segsr.utils.errors import SegSRError

    (tmp_path / 'bomb.yml').write_text(alias_bomb(12))
    with pytest.raises(SegSRError, match=f'{9**13 + 9**12:,}|SEGSR_MAX_YAML_NODES'):
        load_option_file(tmp_path / 'bomb.yml')
