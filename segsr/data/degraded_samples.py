"""The training degradation applied outside training: the stages of a few training samples, so a user sees what
the network learns from, and LR files of a held-out HR folder made by the same degradation.

Both read the training dataset's options (``datasets.train``: its ``degradation`` chain and settings) and use
:class:`segsr.degradations.chain.DegradationChain` on whole images, without the training crop and pair pool.
"""

from pathlib import Path

import cv2
import numpy as np
import torch
from basicsr.data.data_util import paths_from_folder
from tqdm import tqdm

from segsr.data.loaders import build_checked_dataset
from segsr.data.prepare.images import encode_png
from segsr.degradations.bicubic import to_float, to_uint8
from segsr.degradations.chain import KERNEL_KEYS, DegradationChain
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_write_bytes


def training_chain(opt: dict, seed: int) -> DegradationChain:
    """The chain of ``datasets.train`` on the CPU (plain bicubic too, which the datasets otherwise make)."""
    return DegradationChain(opt, opt['datasets']['train'], torch.device('cpu'), seed)


@torch.no_grad()
def sample_stages(opt: dict, count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """For the first ``count`` training samples: ``{'hr': ..., '<n>_<degradation>_<stage>': ..., 'lr': ...}``,
    each (C, h, w) in network values, in the order they were made (a random stage that was not drawn is absent)."""
    dataset_opt = dict(opt['datasets']['train'])
    dataset = build_checked_dataset(dataset_opt, 'train').dataset
    if len(dataset) < count:
        raise SegSRError(f'the training set holds {len(dataset)} samples, fewer than the {count} asked for; '
                         f'ask for at most {len(dataset)}')
    chain = training_chain(opt, seed)
    samples = []
    for index in range(count):
        item = dataset[index]
        kernels = {key: item[key][None].float() for key in KERNEL_KEYS} if 'kernel1' in item else None
        mask = item['mask'][None] if 'mask' in item else None
        _, _, stages = chain.degrade_whole(item['gt'][None].float(), mask, kernels)
        samples.append({name: image[0] for name, image in stages.items()})
    return samples


@torch.no_grad()
def degrade_folder(opt: dict, hr_folder: str | Path, out_folder: str | Path, seed: int = 0) -> list[Path]:
    """Writes the LR of every 8-bit image in ``hr_folder`` under the same name in ``out_folder``, degraded as the
    training set is (a held-out test set for that degradation). The LR is an 8-bit product: values outside the
    8-bit range saturate at 0 and 255, as a camera's do. Existing files are never overwritten."""
    if not Path(hr_folder).is_dir():
        raise SegSRError(f'{hr_folder} is not a folder; give the folder of HR images')
    paths = sorted(Path(path) for path in paths_from_folder(str(hr_folder)))
    if not paths:
        raise SegSRError(f'no images in {hr_folder}; give the folder of HR images')
    out_folder = Path(out_folder)
    taken = [path.name for path in paths if (out_folder / path.name).exists()]
    if taken:
        raise SegSRError(f'{out_folder} already holds {len(taken)} of these LR files (e.g. {taken[0]}); '
                         'give a new --out folder')
    chain = training_chain(opt, seed)
    scale = int(opt['scale'])
    out_folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in tqdm(paths, desc='degrading', unit='image'):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SegSRError(f'{path} is not a readable 8-bit image; remove it or re-export it as PNG')
        height, width = image.shape[:2]
        if height % scale or width % scale:
            raise SegSRError(f'{path} is {width} x {height}, not a multiple of scale {scale}; crop it first')
        hr = torch.from_numpy(to_float(np.ascontiguousarray(image[..., ::-1]))).permute(2, 0, 1)[None]
        lr, _, _ = chain.degrade_whole(hr)
        lr_bgr = to_uint8(lr[0].permute(1, 2, 0).numpy()[..., ::-1])
        atomic_write_bytes(out_folder / path.name, encode_png(lr_bgr))
        written.append(out_folder / path.name)
    return written
