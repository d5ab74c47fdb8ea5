"""Real-ESRGAN's HR-only training dataset under the name its option files (and HAT's Real-HAT files) use.

The dataset is basicsr's own, which registers it as ``RealESRGANDataset_basicsr`` only. It gives HR crops with
the blur and sinc kernels of the first degradation stage; the training pairs are made on the model's device by
``segsr.degradations`` (``datasets.train.degradation: realesrgan``, implied by this type).

The file list comes from ``meta_info`` (Real-ESRGAN's key) or ``meta_info_file`` (HAT's files and segsr's); with
neither, every image under ``dataroot_gt`` is used, as HAT's dataset does. basicsr's class insists on
``meta_info``, which would stop the published Real-HAT files in a KeyError.
"""

import os

from basicsr.data.realesrgan_dataset import RealESRGANDataset as BasicsrRealESRGANDataset
from basicsr.utils.registry import DATASET_REGISTRY

from segsr.data.on_the_fly_dataset import hr_paths


@DATASET_REGISTRY.register()
class RealESRGANDataset(BasicsrRealESRGANDataset):
    """basicsr's RealESRGANDataset reading its HR list from either key, or the whole folder."""

    def __init__(self, opt: dict):
        if opt.get('io_backend', {}).get('type', 'disk') == 'lmdb':
            super().__init__(opt)
            return
        super().__init__({**opt, 'meta_info': os.devnull})
        self.paths = hr_paths(opt['dataroot_gt'], opt.get('meta_info') or opt.get('meta_info_file'))
