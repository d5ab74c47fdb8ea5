"""Pre-made LR/HR pairs (the prepared LR_x{s} and HR folders), with a class label per image."""

import os

import numpy as np
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, img2tensor, scandir
from basicsr.utils.registry import DATASET_REGISTRY
from torchvision.transforms.functional import normalize

from segsr.data.classes import image_class, load_manifest
from segsr.data.file_check import PAIR_FIX, modcrop_pair_problem
from segsr.data.image_files import ImageHeader, read_image
from segsr.utils.errors import SegSRError


def match_gt_to_lq(img_gt: np.ndarray, img_lq: np.ndarray, scale: int, gt_path: str, lq_path: str) -> np.ndarray:
    """Crop the GT to LR * scale (modcrop), after checking that the LR was made from this GT at this scale.

    The dataset check applies the same rule to the headers before a run; this catches a file changed since.
    """
    (h_gt, w_gt), (h_lq, w_lq) = img_gt.shape[:2], img_lq.shape[:2]
    problem = modcrop_pair_problem(gt_path, ImageHeader(w_gt, h_gt), lq_path, ImageHeader(w_lq, h_lq), scale)
    if problem:
        raise SegSRError(f'{problem}; {PAIR_FIX}')
    return img_gt[:h_lq * scale, :w_lq * scale]


def unpaired_files_problem(gt_folder: str, lq_folder: str, filename_tmpl: str) -> str | None:
    """The files of two folders that have no partner, by basicsr's naming rule (basicsr reports only counts)."""
    gt_names = sorted(scandir(gt_folder))
    lq_names = set(scandir(lq_folder))
    partner = {name: filename_tmpl.format(os.path.splitext(name)[0]) + os.path.splitext(name)[1] for name in gt_names}
    lonely_gt = [name for name in gt_names if partner[name] not in lq_names]
    lonely_lq = sorted(lq_names - set(partner.values()))
    parts = []
    if lonely_gt:
        parts.append(f'{len(lonely_gt)} HR files have no LR file, e.g. {os.path.join(gt_folder, lonely_gt[0])} '
                     f'(no {os.path.join(lq_folder, partner[lonely_gt[0]])})')
    if lonely_lq:
        parts.append(f'{len(lonely_lq)} LR files have no HR file, e.g. {os.path.join(lq_folder, lonely_lq[0])}')
    if not parts:
        return None
    return '; '.join(parts) + '; remove them, or point dataroot_gt and dataroot_lq at matching folders'


@DATASET_REGISTRY.register()
class RSPairedImageDataset(PairedImageDataset):
    """basicsr's PairedImageDataset, for HR kept at full size next to LR made from modcrop(HR).

    Same options as PairedImageDataset. Differences: the GT is cropped to LR * scale in every
    phase (so HR sizes that are not multiples of the scale work for training too), items are in
    file-name order without a meta_info_file, a pair whose sizes do not fit the scale or a file that
    cannot be read raises a one-line SegSRError, and each item has a ``class`` label (from the
    dataset's manifest.json, else from the file name).
    """

    pair_size_problem = staticmethod(modcrop_pair_problem)

    def __init__(self, opt: dict):
        folders = opt.get('dataroot_gt'), opt.get('dataroot_lq')
        if opt['io_backend']['type'] == 'disk' and not opt.get('meta_info_file') and all(
                folder and os.path.isdir(folder) for folder in folders):
            problem = unpaired_files_problem(*folders, opt.get('filename_tmpl', '{}'))
            if problem:
                raise SegSRError(problem)
        super().__init__(opt)
        if not opt.get('meta_info_file'):  # basicsr keeps the folder's arbitrary listing order
            self.paths.sort(key=lambda pair: pair['gt_path'])
        self.manifest = load_manifest(opt['dataroot_gt'])

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        scale = self.opt['scale']
        gt_path, lq_path = self.paths[index]['gt_path'], self.paths[index]['lq_path']
        img_gt = read_image(self.file_client, gt_path, 'gt')
        img_lq = read_image(self.file_client, lq_path, 'lq')
        img_gt = match_gt_to_lq(img_gt, img_lq, scale, gt_path, lq_path)
        if self.opt['phase'] == 'train':
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt['gt_size'], scale, gt_path)
            img_gt, img_lq = augment([img_gt, img_lq], self.opt['use_hflip'], self.opt['use_rot'])
        if self.opt.get('color') == 'y':
            img_gt = bgr2ycbcr(img_gt, y_only=True)[..., None]
            img_lq = bgr2ycbcr(img_lq, y_only=True)[..., None]
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path,
                'class': image_class(gt_path, self.manifest)}
