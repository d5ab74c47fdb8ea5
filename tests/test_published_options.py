"""Option files in the published HAT and SeG-SR formats run as they are, shrunk from the command line.

The files under tests/published_options/ hold the published keys and values; only their paths are
placeholders, filled here with the demo data. Every run passes ``--force_yml`` overrides (CPU, a tiny
network, two iterations), as a user would on a laptop.
"""

import json
from pathlib import Path

import cv2
import pytest
import torch
from basicsr.archs import build_network
from conftest import TINY_EDSR

from segsr import evaluation
from segsr.clip.tiny import write_tiny_clip_checkpoint
from segsr.models import tiled_forward
from segsr.training import main as train_main
from segsr.utils.loss_log import read_loss_log

PUBLISHED = Path(__file__).resolve().parent / 'published_options'
TINY_NETWORK = ['num_gpu=0', 'network_g:embed_dim=12', 'network_g:depths=[1,1]', 'network_g:num_heads=[2,2]',
                'network_g:window_size=4', 'network_g:img_size=8', 'network_g:squeeze_factor=4']
TWO_ITERATIONS = ['datasets:train:gt_size=32', 'datasets:train:batch_size_per_gpu=2',
                  'datasets:train:num_worker_per_gpu=0', 'train:total_iter=2', 'val:val_freq=2',
                  'logger:save_checkpoint_freq=2', 'logger:print_freq=1']


@pytest.fixture(scope='module')
def clip_file(tmp_path_factory) -> Path:
    return write_tiny_clip_checkpoint(tmp_path_factory.mktemp('clip') / 'tiny_clip.pt')


def published(name: str, folder: Path, **paths: Path) -> Path:
    """The published-format file ``name`` with its placeholders (DEMO_DATA, WEIGHTS_FILE...) filled in."""
    text = (PUBLISHED / name).read_text()
    for placeholder, path in paths.items():
        text = text.replace(placeholder, str(path))
    options = [line for line in text.splitlines() if not line.startswith('#')]
    assert not [line for line in options if any(p in line for p in ('DEMO_DATA', 'WEIGHTS_FILE', 'CLIP_FILE'))]
    target = folder / name
    target.write_text(text)
    return target


def train(opt_file: Path, root: Path, overrides: list[str]) -> Path:
    train_main(['-opt', str(opt_file), '--root', str(root), '--force_yml', *overrides])
    return root / 'experiments'


def evaluate(opt_file: Path, root: Path, overrides: list[str]) -> list[dict]:
    evaluation.main(['-opt', str(opt_file), '--root', str(root), '--force_yml', *overrides])
    return [json.loads(path.read_text()) for path in sorted((root / 'results').glob('*/*.json'))]


def test_published_hat_files_train_and_test_tile_by_tile(demo_data, tmp_path, monkeypatch):
    opt = published('train_HAT_SRx4_finetune_from_ImageNet_pretrain.yml', tmp_path, DEMO_DATA=demo_data)
    models = train(opt, tmp_path, TINY_NETWORK + TWO_ITERATIONS) / opt.stem / 'models'
    assert (models / 'net_g_2.safetensors').is_file() and (models / 'net_g_latest.safetensors').is_file()

    calls = []

    def recording(*args, **kwargs):
        calls.append((kwargs['tile'], kwargs['overlap']))
        return tiled_engine(*args, **kwargs)

    tiled_engine = tiled_forward.upscale_tiled
    monkeypatch.setattr(tiled_forward, 'upscale_tiled', recording)
    test_file = published('HAT_tile_example.yml', tmp_path, DEMO_DATA=demo_data,
                          WEIGHTS_FILE=models / 'net_g_latest.pth')
    (result,) = evaluate(test_file, tmp_path, TINY_NETWORK + ['tile:tile_size=8', 'tile:tile_pad=4'])
    assert result['network'] == 'HAT' and result['num_images'] == len(calls) > 0
    assert set(calls) == {(8, 4)}
    assert 0 < result['average']['psnr'] < 100


def test_published_segsr_files_train_flat_network_g_and_test(demo_data, clip_file, tmp_path):
    opt = published('train_SEGSR_SRx4_UCMerced.yml', tmp_path, DEMO_DATA=demo_data, CLIP_FILE=clip_file)
    weights = train(opt, tmp_path, TINY_NETWORK + TWO_ITERATIONS) / opt.stem / 'models' / 'net_g_latest.pth'
    test_file = published('test_SEGSR_SRx4_UCMerced.yml', tmp_path, DEMO_DATA=demo_data, CLIP_FILE=clip_file,
                          WEIGHTS_FILE=weights)
    (result,) = evaluate(test_file, tmp_path, TINY_NETWORK)
    assert result['network'] == 'SEGSR' and result['num_images'] > 0
    assert 0 < result['average']['psnr'] < 100
    assert result['trainable_params'] < result['params']  # the CLIP tower is there, frozen


# The published Real-HAT files make their pairs from the demo HR images (RealESRGANDataset and the degradation on
# the model's device); 96-pixel crops keep the LR crop (24) above the files' 21-pixel kernels.
REAL_WORLD_SHRINK = ['datasets:train:gt_size=96', 'gt_size=96', 'datasets:train:num_worker_per_gpu=0',
                     'train:total_iter=2', 'logger:save_checkpoint_freq=2', 'logger:print_freq=1']
TORCH_FILES = ['logger:save_checkpoint_format=pth']  # the checks below read the files with torch.load
VGG19_AT_HOME = Path('experiments') / 'pretrained_models' / 'vgg19-dcbb9e9d.pth'  # basicsr's conventional file


def train_real_hat_mse(demo_data: Path, root: Path) -> Path:
    opt = published('train_Real_HAT_SRx4_mse_model.yml', root, DEMO_DATA=demo_data)
    return train(opt, root, TINY_NETWORK + REAL_WORLD_SHRINK + TORCH_FILES) / 'train_Real_HAT_mse_model' / 'models'


def test_real_hat_mse_file_trains_from_hr_images_alone(demo_data, tmp_path):
    models = train_real_hat_mse(demo_data, tmp_path)
    checkpoint = torch.load(models / 'net_g_latest.pth', weights_only=True)
    assert checkpoint['network_g']['type'] == 'HAT' and {'params', 'params_ema'} <= checkpoint.keys()
    (degradation,) = checkpoint['card']['degradation']  # RealESRGANDataset: Real-ESRGAN's, with the file's settings
    assert degradation['type'] == 'realesrgan' and degradation['queue_size'] == 180
    assert degradation['noise_range2'] == [1, 25] and degradation['blur_kernel_size'] == 21
    state = torch.load(models.parent / 'training_states' / '2.state', weights_only=True)
    assert 'pool' in state['degradation']  # the pair pool of queue_size 180 is part of the training state


def test_real_hat_gan_file_fine_tunes_from_the_real_hat_mse_checkpoint(demo_data, tmp_path):
    """The published GAN file, given the MSE model as its pretrain_network_g, starts from its EMA weights; its
    perceptual loss reads VGG19 (random here) from basicsr's conventional path."""
    from torchvision.models.vgg import cfgs, make_layers

    mse = train_real_hat_mse(demo_data, tmp_path)
    (tmp_path / VGG19_AT_HOME).parent.mkdir(parents=True, exist_ok=True)
    torch.save({f'features.{key}': value for key, value in make_layers(cfgs['E']).state_dict().items()},
               tmp_path / VGG19_AT_HOME)
    opt = published('train_Real_HAT_GAN_SRx4_finetune_from_mse_model.yml', tmp_path, DEMO_DATA=demo_data,
                    WEIGHTS_FILE=mse / 'net_g_latest.pth')
    run = train(opt, tmp_path, TINY_NETWORK + REAL_WORLD_SHRINK + TORCH_FILES) / opt.stem
    assert (run / 'models' / 'net_d_2.pth').is_file()
    log = next(run.glob('train_*.log')).read_text()
    assert f'Loading HAT from {mse / "net_g_latest.pth"} [params_ema]' in log
    losses = read_loss_log(run / 'losses.jsonl')
    assert {'l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'} <= losses[-1].keys()
    start = torch.load(mse / 'net_g_latest.pth', weights_only=True)['params_ema']
    tuned = torch.load(run / 'models' / 'net_g_2.pth', weights_only=True)['params']
    assert start.keys() == tuned.keys() and any(not torch.equal(start[k], tuned[k]) for k in start)

    # HAT's test file for the GAN model: LR images alone, no metrics; the super-resolved images are the result
    test_file = published('HAT_GAN_Real_SRx4.yml', tmp_path, DEMO_DATA=demo_data,
                          WEIGHTS_FILE=run / 'models' / 'net_g_latest.pth')
    evaluate(test_file, tmp_path, TINY_NETWORK + ['tile:tile_size=8', 'tile:tile_pad=4'])
    written = sorted((tmp_path / 'results' / 'HAT_GAN_Real_SRx4' / 'visualization' / 'custom').glob('*.png'))
    inputs = sorted((demo_data / 'LR_x4' / 'val').iterdir())
    assert len(written) == len(inputs) > 0
    for lr, sr in zip(inputs, written, strict=True):
        assert sr.name.startswith(lr.stem)
        assert cv2.imread(str(sr)).shape[:2] == tuple(4 * n for n in cv2.imread(str(lr)).shape[:2])


def test_real_hat_gan_model_without_a_discriminator_stops_in_one_line(demo_data, tmp_path, capsys):
    opt = published('train_Real_HAT_SRx4_mse_model.yml', tmp_path, DEMO_DATA=demo_data)
    with pytest.raises(SystemExit) as stop:
        train(opt, tmp_path, TINY_NETWORK + REAL_WORLD_SHRINK + ['model_type=RealHATGANModel'])
    message = str(stop.value.code)
    assert message.startswith('error: model_type RealHATGANModel trains a discriminator: network_d, train.gan_opt')
    assert '\n' not in message and 'Traceback' not in capsys.readouterr().err
    assert not (tmp_path / 'experiments').exists()


def test_tiled_validation_equals_the_whole_image_inside_for_a_network_whose_reach_fits_the_overlap():
    torch.manual_seed(0)
    net = build_network(dict(TINY_EDSR)).eval()
    lq = torch.rand(2, 3, 30, 21)
    with torch.no_grad():
        whole, tiled = net(lq), tiled_forward.tiled_forward(net, lq, scale=4, tile=12, overlap=12)
    assert tiled.shape == whole.shape
    inside = (..., slice(24, -24), slice(24, -24))  # tiles see reflected context at the scene edge, not zeros
    assert torch.allclose(tiled[inside], whole[inside], atol=1e-5)
    assert not torch.allclose(tiled, whole, atol=1e-5)
