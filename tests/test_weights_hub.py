"""Weights by catalogue name, https:// or hf://: fetched from a loopback server or a local hub cache (never the
internet), checked by sha256, and refused on one line when the hash is wrong or the server cannot be reached."""

import functools
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from conftest import ROOT, TINY_EDSR, eval_options, write_yaml
from raster_fakes import toy_checkpoint

import segsr
from segsr import evaluation
from segsr.export import main as export
from segsr.infer import main as infer
from segsr.options.cli import resolve_path
from segsr.options.inference import FileOptions
from segsr.utils.errors import SegSRError

OPTIONS = {'tile': 16, 'overlap': 4}
TOY_INFER = str(ROOT / 'tests' / 'infer_with_toys.py')


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served on 127.0.0.1 (its base URL), holding the toy checkpoint; segsr's cache in tmp_path."""
    folder = tmp_path / 'served'
    folder.mkdir()
    toy_checkpoint(folder / 'toy_x2.pth')
    monkeypatch.setenv('SEGSR_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('SEGSR_CATALOGUE', raising=False)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    return f'http://127.0.0.1:{port}/toy_x2.pth'


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_catalogue(path: Path, url: str, digest: str | None, name: str = 'toy-x2') -> Path:
    entry = {'url': url, 'card': 'toy x2, RGB 8-bit'} | ({'sha256': digest} if digest else {})
    content = {'models': {name: entry}}
    path.write_text(json.dumps(content) if path.suffix == '.json' else yaml.safe_dump(content))
    return path


def cached_files(tmp_path: Path) -> list[Path]:
    return sorted(path for path in (tmp_path / 'cache').rglob('*') if path.is_file())


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert '\n' not in message
    return message


@pytest.mark.parametrize('suffix', ['.yml', '.json'])
def test_a_catalogue_name_is_fetched_verified_cached_and_upscales_like_the_local_file(served, tmp_path, suffix):
    local = tmp_path / 'served' / 'toy_x2.pth'
    catalogue = write_catalogue(tmp_path / f'mine{suffix}', f'{served}/toy_x2.pth', sha256(local))
    upscaler = segsr.load('toy-x2', catalogue=catalogue, device='cpu')
    assert upscaler.source == tmp_path / 'cache' / sha256(local) / 'toy_x2.pth'
    assert cached_files(tmp_path) == [upscaler.source] and upscaler.source.read_bytes() == local.read_bytes()
    expected = segsr.load(local, device='cpu').upscale(image(), **OPTIONS)
    np.testing.assert_array_equal(upscaler.upscale(image(), **OPTIONS), expected)
    tags = upscaler.tags(FileOptions())
    assert tags['SEGSR_WEIGHTS_SOURCE'] == 'toy-x2' and tags['SEGSR_WEIGHTS_SHA256'] == sha256(local)

    os.environ['SEGSR_CATALOGUE'] = str(write_catalogue(tmp_path / 'down.yml', closed_port_url(), sha256(local)))
    again = segsr.load('toy-x2', device='cpu')  # the server is gone: the verified cached file serves
    assert again.source == upscaler.source


def test_a_wrong_sha256_is_one_line_and_leaves_nothing_in_the_cache(served, tmp_path):
    url = f'{served}/toy_x2.pth'
    catalogue = write_catalogue(tmp_path / 'bad.yml', url, '0' * 64)
    with pytest.raises(SegSRError) as error:
        segsr.load('toy-x2', catalogue=catalogue, device='cpu')
    message = one_line(error)
    assert url in message and sha256(tmp_path / 'served' / 'toy_x2.pth') in message
    assert str(tmp_path / 'cache' / ('0' * 64) / 'toy_x2.pth') in message
    assert cached_files(tmp_path) == []


def test_a_cached_file_with_another_hash_is_refused(served, tmp_path):
    digest = sha256(tmp_path / 'served' / 'toy_x2.pth')
    planted = tmp_path / 'cache' / digest / 'toy_x2.pth'
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b'not these weights')
    with pytest.raises(SegSRError) as error:
        segsr.load('toy-x2', catalogue=write_catalogue(tmp_path / 'c.yml', f'{served}/toy_x2.pth', digest))
    assert str(planted) in one_line(error) and 'delete the file' in str(error.value)


def test_a_server_that_cannot_be_reached_is_one_line_naming_the_url_and_where_to_put_the_file(served, tmp_path):
    url = closed_port_url()
    with pytest.raises(SegSRError) as error:
        segsr.load(url, device='cpu')
    message = one_line(error)
    assert url in message and 'offline' in message and f'place it at {tmp_path / "cache"}' in message
    assert cached_files(tmp_path) == []


def test_a_plain_url_is_fetched_once_and_its_sha256_recorded(served, tmp_path):
    upscaler = segsr.load(f'{served}/toy_x2.pth', device='cpu')
    assert upscaler.origin.sha256 == sha256(tmp_path / 'served' / 'toy_x2.pth')
    assert cached_files(tmp_path) == [upscaler.source] and upscaler.source.parent.name.startswith('url-')
    with pytest.raises(SegSRError) as error:
        segsr.load(f'{served}/missing.pth', device='cpu')
    assert 'HTTP 404' in one_line(error)


def test_segsr_infer_takes_a_catalogue_name_and_refuses_an_unreachable_one(served, tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), image())
    digest = sha256(tmp_path / 'served' / 'toy_x2.pth')
    catalogue = write_catalogue(tmp_path / 'c.yml', f'{served}/toy_x2.pth', digest)
    infer(['--weights', 'toy-x2', '--catalogue', str(catalogue), '--input', str(tmp_path / 'a.png'),
           '--output', str(tmp_path / 'out'), '--tile', '16', '--overlap', '4'])
    assert cv2.imread(str(tmp_path / 'out' / 'a.png')).shape == (40, 48, 3)

    down = write_catalogue(tmp_path / 'down.yml', closed_port_url(), 'f' * 64, name='gone')
    with pytest.raises(SystemExit) as exit_info:
        infer(['--weights', 'gone', '--catalogue', str(down), '--input', str(tmp_path / 'a.png'),
               '--output', str(tmp_path / 'out2')])
    message = str(exit_info.value.code)
    assert message.startswith('error: cannot download http://127.0.0.1:') and '\n' not in message
    assert not (tmp_path / 'out2').exists()


def test_segsr_export_refuses_a_name_whose_download_has_another_hash(served, tmp_path):
    url = f'{served}/toy_x2.pth'
    os.environ['SEGSR_CATALOGUE'] = str(write_catalogue(tmp_path / 'c.yml', url, 'e' * 64))
    with pytest.raises(SystemExit) as exit_info:
        export(['--weights', 'toy-x2', '--output', str(tmp_path / 'm.onnx')])
    message = str(exit_info.value.code)
    assert message.startswith(f'error: {url} downloaded with sha256') and '\n' not in message
    assert cached_files(tmp_path) == [] and not (tmp_path / 'm.onnx').exists()


def test_bad_catalogue_entries_are_one_line_naming_the_file(served, tmp_path):
    bad = write_catalogue(tmp_path / 'bad.yml', f'{served}/toy_x2.pth', 'abc')
    with pytest.raises(SegSRError) as error:
        segsr.load('toy-x2', catalogue=bad)
    assert str(bad) in one_line(error) and 'sha256' in str(error.value)
    ftp = write_catalogue(tmp_path / 'ftp.yml', 'ftp://host/x.pth', None)
    with pytest.raises(SegSRError, match='must start with https://'):
        segsr.load('toy-x2', catalogue=ftp)


def hub_file(tmp_path: Path, revision: str = 'main') -> Path:
    """The toy checkpoint where segsr keeps hf://me/toys/x2/toy.pth, as a download by hand puts it."""
    path = tmp_path / 'cache' / 'hf' / 'me' / 'toys' / revision / 'x2' / 'toy.pth'
    path.parent.mkdir(parents=True)
    toy_checkpoint(path)
    return path


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    constants = pytest.importorskip('huggingface_hub.constants')
    monkeypatch.setenv('SEGSR_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf_home'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)  # read when huggingface_hub was imported


def test_hf_paths_load_from_the_local_cache_offline_and_are_checked_against_the_catalogue(offline_hub, tmp_path):
    path = hub_file(tmp_path)
    upscaler = segsr.load('hf://me/toys/x2/toy.pth', device='cpu')
    assert upscaler.source == path and upscaler.origin.sha256 == sha256(path)
    np.testing.assert_array_equal(upscaler.upscale(image(), **OPTIONS),
                                  segsr.load(path, device='cpu').upscale(image(), **OPTIONS))

    wrong = write_catalogue(tmp_path / 'hf.yml', 'hf://me/toys/x2/toy.pth', '1' * 64, name='hub-toy')
    with pytest.raises(SegSRError) as error:
        segsr.load('hub-toy', catalogue=wrong)
    message = one_line(error)
    assert 'hf://me/toys/x2/toy.pth' in message and str(path) in message and '1' * 64 in message
    assert path.exists() and sha256(path) == upscaler.origin.sha256  # placed by hand: refused, never deleted


def test_hf_paths_offline_without_a_cached_file_are_one_line(offline_hub, tmp_path):
    with pytest.raises(SegSRError) as error:
        segsr.load('hf://me/toys/x2/toy.pth@v1')
    message = one_line(error)
    assert 'hf://me/toys/x2/toy.pth@v1' in message and 'offline' in message
    assert f'place it at {tmp_path / "cache" / "hf" / "me" / "toys" / "v1" / "x2" / "toy.pth"}' in message
    with pytest.raises(SegSRError, match='hf://owner/repo/path'):
        segsr.load('hf://me/toys')


def test_hf_paths_without_huggingface_hub_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'huggingface_hub', None)
    with pytest.raises(SegSRError, match=r'pip install "segsr\[hub\]"'):
        segsr.load('hf://me/toys/x2/toy.pth')


def test_segsr_infer_in_a_child_process_reads_hf_hub_offline(tmp_path):
    pytest.importorskip('huggingface_hub')
    hub_file(tmp_path)
    cv2.imwrite(str(tmp_path / 'a.png'), image())
    env = {**os.environ, 'SEGSR_CACHE': str(tmp_path / 'cache'), 'HF_HOME': str(tmp_path / 'hf_home'),
           'HF_HUB_OFFLINE': '1', 'PYTHONPATH': str(ROOT)}
    command = [sys.executable, TOY_INFER, '--input', str(tmp_path / 'a.png'), '--tile', '16', '--overlap', '4']
    done = subprocess.run([*command, '--weights', 'hf://me/toys/x2/toy.pth', '--output', str(tmp_path / 'out')],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert cv2.imread(str(tmp_path / 'out' / 'a.png')).shape == (40, 48, 3)
    missing = subprocess.run([*command, '--weights', 'hf://me/toys/x2/other.pth', '--output', str(tmp_path / 'o2')],
                             env=env, capture_output=True, text=True)
    last = missing.stderr.strip().splitlines()[-1]  # after the progress bar
    assert missing.returncode != 0 and last.startswith('error: cannot fetch hf://me/toys/x2/other.pth (offline')
    assert f'place it at {tmp_path / "cache" / "hf" / "me" / "toys" / "main" / "x2" / "other.pth"}' in last


def test_segsr_test_takes_a_catalogue_name_for_pretrain_network_g(served, demo_data, tmp_path):
    weights = tmp_path / 'served' / 'edsr.pth'
    network = build_network(dict(TINY_EDSR))
    torch.save({'params_ema': network.state_dict()}, weights)
    os.environ['SEGSR_CATALOGUE'] = str(write_catalogue(tmp_path / 'c.yml', f'{served}/edsr.pth', sha256(weights),
                                                        name='tiny-edsr'))
    options = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'by_name', Path('tiny-edsr')))
    evaluation.main(['-opt', str(options), '--root', str(tmp_path)])
    result = json.loads((tmp_path / 'results' / 'by_name' / 'demo_val.json').read_text())
    assert result['weights'] == str(tmp_path / 'cache' / sha256(weights) / 'edsr.pth') and result['num_images'] > 0


def test_option_files_keep_weights_urls_as_written(tmp_path):
    for url in ('hf://me/toys/x2/toy.pth@v1', 'https://host/a/b.pth'):
        assert resolve_path(url, tmp_path) == url  # a path would fold the double slash
