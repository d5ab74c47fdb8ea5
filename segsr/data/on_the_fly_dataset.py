"""HR-only training data: the LR is made from each HR crop on the fly, as SeG-SR trains."""

import os
import random

import numpy as np
from basicsr.data.data_util import paths_from_folder
from basicsr.data.transforms import augment, mod_crop
from basicsr.utils import FileClient, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from segsr.data.classes import image_class, load_manifest
from segsr.data.image_files import read_image
from segsr.degradations.bicubic import bicubic_downscale, quantize
from segsr.options.degradation import degradation_names
from segsr.utils.errors import SegSRError


def read_meta_info(meta_info_file: str) -> list[str]:
    """File names from a basicsr meta_info_file: the first field of each non-empty line."""
    with open(meta_info_file, encoding='utf-8') as handle:
        return [line.split()[0] for line in handle if line.strip()]


def hr_paths(gt_folder: str, meta_info_file: str | None) -> list[str]:
    """The HR images a meta_info_file lists under ``gt_folder``, else every image there; a listed image that is
    missing stops the run in one line."""
    if meta_info_file:
        paths = [os.path.join(gt_folder, name) for name in read_meta_info(meta_info_file)]
    else:
        paths = sorted(paths_from_folder(gt_folder))
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise SegSRError(f'{len(missing)} listed HR images are missing, e.g. {missing[0]}; '
                         'check dataroot_gt and meta_info_file, or re-run scripts/prepare_dataset.py')
    if not paths:
        raise SegSRError(f'no HR images in {meta_info_file or gt_folder}; check dataroot_gt and meta_info_file')
    return paths


def random_crop(img: np.ndarray, size: int, path: str) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        raise SegSRError(f'{path} is {w}x{h}, smaller than gt_size {size}; lower gt_size or remove the image')
    top, left = random.randint(0, h - size), random.randint(0, w - size)
    return img[top:top + size, left:left + size]


@DATASET_REGISTRY.register()
class RSOnTheFlyDataset(data.Dataset):
    """HR images only; LR = MATLAB-style bicubic (basicsr imresize) of the augmented HR crop.

    Options: dataroot_gt, meta_info_file (optional), gt_size, use_hflip, use_rot, scale,
    quantize_lr (round LR to 8-bit levels, as saved test LR are), io_backend, phase.
    Outside training the whole image is used, modcropped to the scale.
    """

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        self.scale = int(opt['scale'])
        self.quantize_lr = bool(opt.get('quantize_lr', False))
        self.io_backend_opt = dict(opt.get('io_backend', {'type': 'disk'}))
        self.file_client = None
        if self.io_backend_opt['type'] == 'lmdb':
            raise SegSRError('RSOnTheFlyDataset reads image files; set io_backend type to disk')
        gt_folder = opt['dataroot_gt']
        self.paths = hr_paths(gt_folder, opt.get('meta_info_file'))
        if self.is_train and opt['gt_size'] % self.scale:
            raise SegSRError(f'gt_size {opt["gt_size"]} is not a multiple of scale {self.scale}; change gt_size')
        self.manifest = load_manifest(gt_folder)
        self.hr_only = self.is_train and degradation_names(opt) != ['bicubic']  # the model degrades on its device

    @property
    def is_train(self) -> bool:
        return self.opt.get('phase') == 'train'

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        gt_path = self.paths[index]
        img_gt = read_image(self.file_client, gt_path, 'gt')
        if self.is_train:
            img_gt = random_crop(img_gt, self.opt['gt_size'], gt_path)
            img_gt = augment(img_gt, self.opt.get('use_hflip', True), self.opt.get('use_rot', True))
        else:
            img_gt = mod_crop(img_gt, self.scale)
        item = {'lq_path': gt_path, 'gt_path': gt_path, 'class': image_class(gt_path, self.manifest)}
        if self.hr_only:
            return {'gt': img2tensor(np.ascontiguousarray(img_gt), bgr2rgb=True, float32=True), **item}
        img_lq = bicubic_downscale(np.ascontiguousarray(img_gt), self.scale)
        if self.quantize_lr:
            img_lq = quantize(img_lq)
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': img_lq, 'gt': img_gt, **item}

    def __len__(self) -> int:
        return len(self.paths)
