"""``type: ImageNetPairedDataset``, the training dataset named by the published HAT and SeG-SR option files."""

from basicsr.utils.registry import DATASET_REGISTRY

from segsr.data.on_the_fly_dataset import RSOnTheFlyDataset


@DATASET_REGISTRY.register()
class ImageNetPairedDataset(RSOnTheFlyDataset):
    """HR images only, the LR made by MATLAB-style bicubic on the fly: :class:`RSOnTheFlyDataset` under the
    published name, with the same keys (``dataroot_gt``, ``meta_info_file``, ``gt_size``, ``use_hflip``,
    ``use_rot``).

    The published class downscales the whole HR image and then crops the pair; this one crops the HR
    first and downscales the crop, so the LR borders of a crop differ (bicubic sees no pixels outside it).
    The published class also stretches images smaller than ``gt_size`` up to it; here such an image is an
    error that names it, since a stretched HR is no longer ground truth.
    """
