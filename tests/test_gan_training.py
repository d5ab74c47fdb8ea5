"""GAN and perceptual training: both discriminators train on the CPU, a stopped run resumes bitwise (generator,
discriminator and their optimisers), VGG weights come from a local file only, and bad options stop in one line."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from basicsr.losses.gan_loss import GANLoss
from conftest import ROOT, TINY_EDSR, TINY_HAT, train_options, write_yaml
from PIL import Image
from raster_scenes import l2a_scene
from skimage import data as skimage_data
from torchvision.models.vgg import cfgs, make_layers

from segsr.data.raster_splits import SplitPlan, make_raster_splits
from segsr.training import main as train_main
from segsr.utils.loss_log import read_loss_log

UNET = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4, 'skip_connection': True}
VGG_STYLE = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 2, 'input_size': 128}
EARLY_LAYERS = 4  # features.0 .. features.3: conv1_1, relu1_1, conv1_2, relu1_2


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory) -> Path:
    """A random VGG19 state dict truncated to the layers up to conv1_2 (a few hundred kB)."""
    torch.manual_seed(0)
    layers = make_layers(cfgs['E'])[:EARLY_LAYERS]
    path = tmp_path_factory.mktemp('vgg') / 'vgg19_early.pth'
    torch.save({f'features.{key}': value for key, value in layers.state_dict().items()}, path)
    return path


def gan_options(demo_data: Path, name: str, vgg_file: Path, total_iter: int, network_d: dict = UNET) -> dict:
    options = train_options(demo_data, name, total_iter=total_iter)
    options['model_type'] = 'SegSRGANModel'
    options['network_d'] = dict(network_d)
    options['train'].update(
        optim_d={'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
        ldl_opt={'type': 'L1Loss', 'loss_weight': 1.0},
        perceptual_opt={'type': 'PerceptualLoss', 'layer_weights': {'conv1_2': 1.0}, 'vgg_weights': str(vgg_file),
                        'perceptual_weight': 1.0, 'style_weight': 0.0},
        gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1},
        net_d_iters=1, net_d_init_iters=1,
    )
    options['val']['val_freq'] = None
    return options


def train(options: dict, tmp_path: Path, *extra: str) -> Path:
    opt_file = write_yaml(tmp_path / f'{options["name"]}.yml', options)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), *extra])
    return tmp_path / 'experiments' / options['name']


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_unet_gan_run_stopped_and_resumed_equals_the_uninterrupted_run_bitwise(demo_data, vgg_file, tmp_path):
    straight = gan_options(demo_data, 'straight', vgg_file, total_iter=4)
    straight['logger']['save_checkpoint_freq'] = 2
    straight_run = train(straight, tmp_path)
    stopped = gan_options(demo_data, 'stopped', vgg_file, total_iter=2)
    stopped_run = train(stopped, tmp_path)
    train(stopped, tmp_path, '--auto_resume', '--force_yml', 'train:total_iter=4')

    losses = read_loss_log(straight_run / 'losses.jsonl')
    assert 'l_g_gan' not in losses[0] and 'l_d_real' in losses[0]  # net_d_init_iters: the generator waits
    assert {'l_g_pix', 'l_g_ldl', 'l_g_percep', 'l_g_gan', 'l_d_fake'} <= losses[1].keys()
    assert all(np.isfinite(value) for record in losses for key, value in record.items() if key.startswith('l_'))
    assert read_loss_log(stopped_run / 'losses.jsonl') == losses

    for net in ('net_g', 'net_d'):
        first, second = (weights(run / 'models' / f'{net}_4.pth') for run in (straight_run, stopped_run))
        for key in ('params', 'params_ema') if net == 'net_g' else ('params',):
            assert first[key].keys() == second[key].keys()
            assert all(torch.equal(first[key][name], second[key][name]) for name in first[key]), f'{net} {key}'
    start = weights(straight_run / 'models' / 'net_d_2.pth')['params']
    assert any(not torch.equal(start[name], first['params'][name]) for name in start)  # the discriminator learns
    assert first['network_d']['type'] == 'UNetDiscriminatorSN'
    state = weights(stopped_run / 'training_states' / '4.state')
    assert len(state['optimizers']) == len(state['schedulers']) == 2


def test_auto_resume_skips_a_state_whose_discriminator_file_is_truncated(demo_data, vgg_file, tmp_path, caplog):
    options = gan_options(demo_data, 'truncated_d', vgg_file, total_iter=4)
    options['logger']['save_checkpoint_freq'] = 2
    run = train(options, tmp_path)
    net_d = run / 'models' / 'net_d_4.pth'
    net_d.write_bytes(net_d.read_bytes()[:100])
    logging.getLogger('basicsr').addHandler(caplog.handler)
    try:
        train(options, tmp_path, '--auto_resume', '--force_yml', 'train:total_iter=5')
    finally:
        logging.getLogger('basicsr').removeHandler(caplog.handler)
    assert 'Skipping training state 4.state' in caplog.text and 'net_d_4.pth' in caplog.text
    assert 'Resuming training from epoch 0, iteration 2' in caplog.text


def test_vgg_style_discriminator_trains_on_128_pixel_crops(tmp_path, vgg_file):
    hr = tmp_path / 'hr'
    hr.mkdir()
    for index, photo in enumerate((skimage_data.astronaut(), skimage_data.chelsea())):
        Image.fromarray(photo[:128, :128]).save(hr / f'{index}.png')
    options = gan_options(tmp_path, 'vgg_style', vgg_file, total_iter=2, network_d=VGG_STYLE)
    options['datasets'] = {'train': {
        'name': 'photos', 'type': 'RSOnTheFlyDataset', 'dataroot_gt': str(hr), 'io_backend': {'type': 'disk'},
        'gt_size': 128, 'use_hflip': True, 'use_rot': False, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2,
        'dataset_enlarge_ratio': 1}}
    options['network_g'] = dict(TINY_EDSR)
    del options['val']
    run = train(options, tmp_path)
    losses = read_loss_log(run / 'losses.jsonl')
    assert [record['iter'] for record in losses] == [1, 2] and np.isfinite(losses[1]['l_g_gan'])
    assert weights(run / 'models' / 'net_d_2.pth')['network_d']['input_size'] == 128


@pytest.mark.parametrize('nan_call, stepped', [(4, set()), (5, {'net_g'})])
def test_non_finite_losses_leave_the_networks_as_they_were(demo_data, vgg_file, tmp_path, monkeypatch,
                                                           nan_call, stepped):
    """GANLoss calls of iteration 2: the generator's (4), then the discriminator's on real (5) and fake (6)
    images. A NaN in the generator's skips both steps; in the discriminator's, only the discriminator's."""
    forward, calls = GANLoss.forward, []

    def maybe_nan(self, *args, **kwargs):
        calls.append(1)
        loss = forward(self, *args, **kwargs)
        return loss * float('nan') if len(calls) == nan_call else loss

    monkeypatch.setattr(GANLoss, 'forward', maybe_nan)
    options = gan_options(demo_data, f'nan_{nan_call}', vgg_file, total_iter=2)
    options['train'].update(net_d_init_iters=0, ema_decay=0)
    del options['train']['ldl_opt']
    options['logger']['save_checkpoint_freq'] = 1
    run = train(options, tmp_path)
    assert [record['skipped'] for record in read_loss_log(run / 'losses.jsonl')] == [False, True]
    for net in ('net_g', 'net_d'):
        before, after = (weights(run / 'models' / f'{net}_{i}.pth')['params'] for i in (1, 2))
        learnt = [name for name in before if not name.endswith(('weight_u', 'weight_v'))]  # not power iteration
        unchanged = all(torch.equal(before[name], after[name]) for name in learnt)
        assert unchanged == (net not in stepped), net


def four_band_gan_options(tmp_path: Path, vgg_file: Path, **train_extra) -> dict:
    """A tiny 4-band HAT (x2) on uint16 L2A-style rasters, judged by a UNet discriminator on 16-pixel crops."""
    root = tmp_path / 'data'
    (root / 'hr').mkdir(parents=True)
    l2a_scene(root / 'hr' / 'a.tif', bands=4, size=96, seed=0, nodata_corner=24)
    l2a_scene(root / 'hr' / 'b.tif', bands=4, size=96, seed=5)
    make_raster_splits(str(root / 'hr'), root / 'splits', SplitPlan(32, 16, 16, (0.5, 0.25, 0.25), 0, 2))
    options = gan_options(tmp_path, 'gan4', vgg_file, total_iter=2)
    options.update(scale=2, radiometry={'from_metadata': True, 'range': [0.0, 0.6]},
                   network_g={'type': 'HAT', 'upscale': 2, 'in_chans': 4, **TINY_HAT})
    options['datasets'] = {'train': {
        'name': 'scenes', 'type': 'RasterDataset', 'dataroot_gt': str(root / 'hr'), 'bands': [4, 3, 2, 1],
        'meta_info_file': str(root / 'splits' / 'train.txt'), 'gt_size': 16, 'use_hflip': True, 'use_rot': True,
        'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1}}
    del options['val']
    options['train'].update(train_extra)
    return options


def test_four_band_rasters_show_the_rgb_bands_to_vgg_and_the_discriminator(tmp_path, vgg_file):
    run = train(four_band_gan_options(tmp_path, vgg_file, rgb_bands=[2, 3, 4]), tmp_path)
    losses = read_loss_log(run / 'losses.jsonl')
    assert [record['iter'] for record in losses] == [1, 2] and np.isfinite(losses[1]['l_g_percep'])
    assert weights(run / 'models' / 'net_g_2.pth')['params']['conv_first.weight'].shape[1] == 4


def test_four_band_network_without_rgb_bands_stops_in_one_line(tmp_path, vgg_file, capsys):
    message = refusal(four_band_gan_options(tmp_path, vgg_file), tmp_path, capsys)
    assert 'train.rgb_bands: missing; the network makes 4 band(s)' in message


def test_pixel_model_takes_its_perceptual_loss_from_the_local_vgg_file(demo_data, vgg_file, tmp_path):
    options = train_options(demo_data, 'percep', total_iter=2)
    options['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv1_2': 1.0},
                                          'vgg_weights': str(vgg_file)}
    run = train(options, tmp_path)
    losses = read_loss_log(run / 'losses.jsonl')
    assert all(np.isfinite(record['l_percep']) and record['l_percep'] > 0 for record in losses)


def refusal(options: dict, tmp_path: Path, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        train(options, tmp_path)
    message = str(stop.value.code)
    assert message.startswith('error: ') and '\n' not in message
    assert 'Traceback' not in capsys.readouterr().err
    assert not (tmp_path / 'experiments').exists()
    return message


def test_missing_vgg_weights_name_the_file_to_fetch(demo_data, tmp_path, capsys):
    missing = tmp_path / 'nowhere' / 'vgg19-dcbb9e9d.pth'
    message = refusal(gan_options(demo_data, 'no_vgg', missing, total_iter=2), tmp_path, capsys)
    assert str(missing) in message and 'vgg19-dcbb9e9d.pth' in message and 'nothing is downloaded' in message


def test_vgg_file_with_a_pickle_payload_is_refused(demo_data, tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {tmp_path / "ran"}',))

    hostile = tmp_path / 'vgg19.pth'
    torch.save({'features.0.weight': Payload()}, hostile)
    message = refusal(gan_options(demo_data, 'pickle_vgg', hostile, total_iter=2), tmp_path, capsys)
    assert str(hostile) in message and 'weights only' in message
    assert not (tmp_path / 'ran').exists()


def test_truncated_vgg_file_without_the_layers_asked_for_is_refused(demo_data, vgg_file, tmp_path, capsys):
    options = gan_options(demo_data, 'deep_vgg', vgg_file, total_iter=2)
    options['train']['perceptual_opt']['layer_weights'] = {'conv2_2': 1.0}
    message = refusal(options, tmp_path, capsys)
    assert 'lack' in message and '(e.g. features.5.bias)' in message and 'conv2_2' in message


@pytest.mark.parametrize('network_d, crop, expected', [
    (VGG_STYLE, 32, 'VGGStyleDiscriminator of input_size 128 cannot judge the 32 x 32 crops'),
    ({**VGG_STYLE, 'input_size': 96}, 96, 'network_d.input_size is 96; VGGStyleDiscriminator takes 128 or 256'),
    (UNET, 36, 'UNetDiscriminatorSN cannot judge the 36 x 36 crops'),
    ({**UNET, 'num_in_ch': 4}, 32, 'network_d.num_in_ch is 4'),
])
def test_discriminator_that_does_not_fit_the_crop_stops_before_any_folder(demo_data, vgg_file, tmp_path, capsys,
                                                                          network_d, crop, expected):
    options = gan_options(demo_data, 'misfit', vgg_file, total_iter=2, network_d=network_d)
    options['datasets']['train']['gt_size'] = crop
    assert expected in refusal(options, tmp_path, capsys)


def test_gan_model_without_a_discriminator_stops_in_one_line(demo_data, vgg_file, tmp_path, capsys):
    options = gan_options(demo_data, 'no_d', vgg_file, total_iter=2)
    del options['network_d'], options['train']['gan_opt']
    message = refusal(options, tmp_path, capsys)
    assert 'network_d, train.gan_opt missing' in message


@pytest.mark.parametrize('key,value', [('accum_iter', 2), ('grad_clip_max_norm', 1.0), ('ema_start_iter', 5)])
def test_step_options_the_gan_step_does_not_apply_are_refused_not_ignored(demo_data, vgg_file, tmp_path, capsys,
                                                                          key, value):
    options = gan_options(demo_data, 'unapplied', vgg_file, total_iter=2)
    options['train'][key] = value
    message = refusal(options, tmp_path, capsys)
    assert f'does not apply train.{key}' in message


@pytest.mark.slow
def test_two_gloo_processes_train_a_gan(demo_data, vgg_file, tmp_path):
    options = gan_options(demo_data, 'gan_pair', vgg_file, total_iter=2)
    options['datasets']['train']['batch_size_per_gpu'] = 1
    opt_file = write_yaml(tmp_path / 'pair.yml', options)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': str(ROOT)}
    process = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         str(ROOT / 'segsr' / 'train.py'), '-opt', str(opt_file), '--root', str(tmp_path), '--launcher', 'pytorch'],
        env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    run = tmp_path / 'experiments' / 'gan_pair'
    assert 'x 2 processes' in next(run.glob('train_*.log')).read_text()
    assert (run / 'models' / 'net_d_2.pth').is_file() and (run / 'models' / 'net_g_2.pth').is_file()
    assert np.isfinite(read_loss_log(run / 'losses.jsonl')[1]['l_g_gan'])


@pytest.mark.parametrize('gan_gt_usm', [False, True])
def test_per_loss_usm_keys_choose_each_losss_reference(demo_data, vgg_file, tmp_path, monkeypatch, gan_gt_usm):
    """Real-ESRGAN's l1_gt_usm / gan_gt_usm: the pixel loss compares with the unsharp-masked HR, the
    discriminator's real images are the plain or the sharpened HR as gan_gt_usm says."""
    from basicsr.losses.basic_loss import L1Loss

    from segsr.degradations.sharpen import UnsharpMask
    from segsr.models.gan_model import SegSRGANModel

    seen = {'pixel_targets': [], 'real': []}
    pixel_forward, discriminator_step = L1Loss.forward, SegSRGANModel.discriminator_step

    def recording_pixel(self, pred, target, weight=None, **kwargs):
        seen['pixel_targets'].append(target.detach().clone())
        return pixel_forward(self, pred, target, weight, **kwargs)

    def recording_step(self):
        real = self.target('gan_gt_usm')
        seen['real'].append((real.clone(), self.gt.clone()))
        return discriminator_step(self)

    monkeypatch.setattr(L1Loss, 'forward', recording_pixel)
    monkeypatch.setattr(SegSRGANModel, 'discriminator_step', recording_step)
    options = gan_options(demo_data, f'usm_{gan_gt_usm}', vgg_file, total_iter=2)
    del options['train']['ldl_opt']
    options.update(l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=gan_gt_usm)
    train(options, tmp_path)

    (real, gt), *_ = seen['real']
    sharpened = UnsharpMask(eight_bit=True)(gt)
    assert not torch.equal(sharpened, gt)
    assert torch.equal(real, sharpened if gan_gt_usm else gt)
    assert seen['pixel_targets'] and all(target.shape == gt.shape for target in seen['pixel_targets'])
    assert torch.equal(seen['pixel_targets'][-1], UnsharpMask(eight_bit=True)(seen['real'][-1][1]))


@pytest.mark.parametrize('model_type, value, expected', [
    ('SegSRModel', True, 'l1_gt_usm: read by the GAN model types'),
    ('SegSRGANModel', 'yes', "l1_gt_usm: 'yes' is not true or false"),
])
def test_per_loss_usm_keys_a_model_cannot_apply_stop_in_one_line(demo_data, vgg_file, tmp_path, capsys, model_type,
                                                                value, expected):
    options = gan_options(demo_data, 'usm_misuse', vgg_file, total_iter=2)
    if model_type == 'SegSRModel':
        options['model_type'] = model_type
        del options['network_d']
        for key in ('optim_d', 'gan_opt', 'ldl_opt', 'net_d_iters', 'net_d_init_iters'):
            del options['train'][key]
    options['l1_gt_usm'] = value
    assert expected in refusal(options, tmp_path, capsys)
