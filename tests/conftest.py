"""Shared fixtures: the demo dataset and the tiny CLIP file built once per session, the tiny networks, an earlier
run and a small disk for tests that must leave them as they were, and option files written per test."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import segsr  # noqa: F401  (patches basicsr before any test imports it)
from segsr.clip.tiny import write_tiny_clip_checkpoint
from segsr.data.demo import build_demo_dataset

ROOT = Path(__file__).resolve().parents[1]


def bind_basicsr_logger() -> None:
    """basicsr's logger writes to the stderr of its first call for good; made here, it is never bound to the
    capture of one test (capsys), which is closed when that test ends and would make later log lines fail."""
    from basicsr.utils import get_root_logger  # after segsr has patched basicsr

    get_root_logger()


bind_basicsr_logger()

TINY_EDSR = {
    'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 4,
    'res_scale': 1, 'img_range': 255.0, 'rgb_mean': [0.4488, 0.4371, 0.4040],
}
# A two-group HAT whose windows shift (img_size 8 > window 4); add ``type: HAT`` and ``upscale`` as needed.
TINY_HAT = {
    'img_size': 8, 'embed_dim': 12, 'depths': (2, 1), 'num_heads': (2, 3), 'window_size': 4, 'compress_ratio': 3,
    'squeeze_factor': 4, 'mlp_ratio': 2, 'upsampler': 'pixelshuffle',
}


@pytest.fixture(autouse=True)
def own_environment():
    """Each test gets the environment it started with back: a launcher run in-process (Slurm, torchrun) sets
    RANK, WORLD_SIZE and MASTER_ADDR, which would turn a later in-process run into a rank of a job that is gone."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope='session')
def clip_file(tmp_path_factory) -> Path:
    """A random ``segsr-tiny-vit`` CLIP checkpoint (see segsr/clip/tiny.py)."""
    return write_tiny_clip_checkpoint(tmp_path_factory.mktemp('clip') / 'tiny_clip.pt')


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('demo')
    build_demo_dataset(out)
    return out


@pytest.fixture
def earlier_run(tmp_path) -> Path:
    """An experiments folder that already holds a run named ``bad``, which no failed start may move or change."""
    experiment = tmp_path / 'experiments' / 'bad'
    (experiment / 'models').mkdir(parents=True)
    (experiment / 'training_states').mkdir()
    (experiment / 'models' / 'net_g_2.pth').write_bytes(b'weights of an earlier run')
    (experiment / 'training_states' / '2.state').write_bytes(b'state of an earlier run')
    return tmp_path / 'experiments'


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, where this machine lets the test mount one."""
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('mounting a small tmpfs needs root and mount(8)')
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {result.stderr.strip()}')
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', str(mount_point)], check=True)


def train_options(data: Path, name: str, network: dict | None = None, total_iter: int = 2) -> dict:
    """A minimal training configuration on the demo data, validating and saving every ``total_iter`` steps."""
    return {
        'name': name, 'model_type': 'SegSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {
            'train': {
                'name': 'demo_train', 'type': 'RSPairedImageDataset',
                'dataroot_gt': str(data / 'HR' / 'train'), 'dataroot_lq': str(data / 'LR_x4' / 'train'),
                'meta_info_file': str(data / 'meta' / 'train.txt'), 'filename_tmpl': '{}',
                'io_backend': {'type': 'disk'}, 'gt_size': 32, 'use_hflip': True, 'use_rot': True,
                'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1,
            },
            'val': {
                'name': 'demo_val', 'type': 'RSPairedImageDataset',
                'dataroot_gt': str(data / 'HR' / 'val'), 'dataroot_lq': str(data / 'LR_x4' / 'val'),
                'filename_tmpl': '{}', 'io_backend': {'type': 'disk'},
            },
        },
        'network_g': dict(network or TINY_EDSR),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'total_iter': total_iter, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {
            'val_freq': total_iter, 'save_img': False, 'pbar': False, 'compare_bicubic': True,
            'metrics': {
                'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
                'ssim': {'type': 'calculate_ssim', 'crop_border': 4, 'test_y_channel': True},
            },
        },
        # torch files: the tests built on these options read the weights with torch.load; safetensors, the
        # default, has its own tests (test_safetensors_weights.py) and the published option files use it
        'logger': {'print_freq': 1, 'save_checkpoint_freq': total_iter, 'use_tb_logger': True,
                   'save_checkpoint_format': 'pth'},
    }


def eval_options(data: Path, name: str, weights: Path, network: dict | None = None) -> dict:
    return {
        'name': name, 'model_type': 'SegSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'test_1': {
            'name': 'demo_val', 'type': 'RSPairedImageDataset',
            'dataroot_gt': str(data / 'HR' / 'val'), 'dataroot_lq': str(data / 'LR_x4' / 'val'),
            'filename_tmpl': '{}', 'io_backend': {'type': 'disk'},
        }},
        'network_g': dict(network or TINY_EDSR),
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params_ema', 'strict_load_g': True},
        'val': {'save_img': True, 'pbar': False, 'compare_bicubic': True},
    }


def write_yaml(path: Path, options: dict) -> Path:
    path.write_text(yaml.safe_dump(options, sort_keys=False))
    return path
