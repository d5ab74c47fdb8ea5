"""Real-ESRGAN's high-order degradation on the CPU with the keys of HAT's Real-HAT option file."""

from pathlib import Path

import pytest
import torch

from segsr.degradations.chain import DegradationChain
from segsr.degradations.random_state import DegradationRNG
from segsr.degradations.realesrgan import RealESRGANDegradation
from segsr.options.degradation import realesrgan_settings
from segsr.options.safe_yaml import load_option_file
from segsr.utils.errors import SegSRError

REAL_HAT = Path(__file__).parent / 'published_options' / 'train_Real_HAT_SRx4_mse_model.yml'


def real_hat_options(**dataset_changes) -> dict:
    opt = load_option_file(REAL_HAT)
    opt['datasets']['train'].update(dataset_changes)
    return opt


def test_real_hat_keys_degrade_a_batch_on_the_cpu():
    opt = real_hat_options(gt_size=64, blur_kernel_size=7, blur_kernel_size2=7)
    opt['gt_size'] = 64
    settings = realesrgan_settings(opt, opt['datasets']['train'])
    assert settings['jpeg_range'] == opt['jpeg_range'] and settings['kernel_prob'] == opt['datasets']['train'][
        'kernel_prob'], 'the top-level and dataset keys of the published file are read'
    degradation = RealESRGANDegradation(settings, opt['scale'], eight_bit=True)
    gt = torch.rand(2, 3, 64, 64)
    lq, target, stages = degradation(gt, DegradationRNG(0, 'cpu'))
    assert lq.shape == (2, 3, 16, 16) and target.shape == gt.shape
    assert {'blur1', 'resize1', 'noise1', 'jpeg1', 'resize2', 'noise2', 'jpeg2', 'sinc'} <= stages.keys()
    assert torch.equal(lq, torch.round(lq * 255) / 255), '8-bit LR as Real-ESRGAN makes it'
    assert not torch.equal(target, gt), 'gt_usm: the target is the unsharp-masked HR'


def test_pipeline_draws_only_from_its_own_random_state():
    settings = realesrgan_settings({}, {'blur_kernel_size': 7, 'blur_kernel_size2': 7})
    degradation = RealESRGANDegradation(settings, 2, eight_bit=True)
    gt = torch.rand(2, 3, 32, 32)
    torch.manual_seed(5)
    first = degradation(gt, DegradationRNG(1, 'cpu'))[0]
    global_after = torch.rand(1)
    torch.manual_seed(123)
    second = degradation(gt, DegradationRNG(1, 'cpu'))[0]
    assert torch.equal(first, second)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), global_after), 'the global generator is left as it was'


def test_multiband_images_are_not_clipped_and_refuse_jpeg():
    settings = realesrgan_settings({}, {'blur_kernel_size': 7, 'blur_kernel_size2': 7})
    gt = torch.rand(1, 4, 32, 32) * 0.1 + 1.5  # physical values above the reference range
    with pytest.raises(SegSRError, match='JPEG compresses 3-band RGB only'):
        RealESRGANDegradation(settings, 2, eight_bit=False)(gt, DegradationRNG(0, 'cpu'))
    settings |= {'jpeg_range': None, 'jpeg_range2': None, 'gray_noise_prob': 0, 'gray_noise_prob2': 0}
    lq, _, _ = RealESRGANDegradation(settings, 2, eight_bit=False)(gt, DegradationRNG(0, 'cpu'))
    assert lq.shape == (1, 4, 16, 16) and lq.mean() > 1.2, "values above 1 are not clamped"


def test_pair_pool_mixes_batches_and_is_restored_with_the_random_state():
    opt = {'scale': 2, 'queue_size': 4}
    dataset = {'degradation': 'realesrgan', 'blur_kernel_size': 7, 'blur_kernel_size2': 7, 'gt_size': 32}
    chain = DegradationChain(opt, dataset, torch.device('cpu'), seed=0)
    batches = [torch.full((2, 3, 32, 32), value / 10) for value in range(5)]
    for batch in batches[:2]:
        lq, gt, _ = chain.degrade(batch)
        assert torch.equal(gt.mean(dim=(1, 2, 3)), batch.mean(dim=(1, 2, 3))), 'filling: pairs pass through'
    state = chain.state_dict()
    _, gt, _ = chain.degrade(batches[2])
    assert not torch.equal(gt, batches[2]), 'a full pool hands out stored pairs'
    resumed = DegradationChain(opt, dataset, torch.device('cpu'), seed=7)
    resumed.load_state_dict(state)
    _, gt_again, _ = resumed.degrade(batches[2])
    assert torch.equal(gt_again, gt)


def realesrgan_dataset(demo_data: Path, **keys):
    from segsr.data.realesrgan_dataset import RealESRGANDataset

    opt = real_hat_options()['datasets']['train']
    for key in ('meta_info_file', 'meta_info'):
        opt.pop(key, None)
    return RealESRGANDataset({**opt, 'dataroot_gt': str(demo_data / 'HR' / 'train'), 'phase': 'train', **keys})


def test_realesrgan_dataset_reads_either_list_key_or_the_whole_folder(demo_data):
    listed = (demo_data / 'meta' / 'train.txt').read_text().split()
    names = lambda dataset: sorted(Path(path).name for path in dataset.paths)  # noqa: E731
    whole = realesrgan_dataset(demo_data)
    assert names(whole) == sorted(path.name for path in (demo_data / 'HR' / 'train').iterdir())
    short_list = demo_data / 'meta' / 'first_two.txt'
    short_list.write_text('\n'.join(listed[:2]) + '\n')
    for key in ('meta_info', 'meta_info_file'):
        assert names(realesrgan_dataset(demo_data, **{key: str(short_list)})) == sorted(listed[:2])
    item = whole[0]
    assert item['gt'].shape[0] == 3 and {'kernel1', 'kernel2', 'sinc_kernel'} <= item.keys()


def test_realesrgan_dataset_names_a_listed_image_that_is_missing(demo_data, tmp_path):
    listing = tmp_path / 'listing.txt'
    listing.write_text('not_there.png\n')
    with pytest.raises(SegSRError, match=r'1 listed HR images are missing, e\.g\. .*not_there\.png; check dataroot_gt'):
        realesrgan_dataset(demo_data, meta_info=str(listing))
