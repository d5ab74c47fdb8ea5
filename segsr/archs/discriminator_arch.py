"""basicsr's discriminators for GAN training, and the check that one fits the crop it will judge.

``VGGStyleDiscriminator`` and ``UNetDiscriminatorSN`` are basicsr's own. basicsr registers the second as
``UNetDiscriminatorSN_basicsr`` only; it is registered here under the name Real-ESRGAN's and HAT's option
files use. They judge HR crops of ``datasets.train.gt_size``
pixels with the three bands the GAN terms see, so a discriminator that cannot take that crop is refused
when the options are read, not with an assertion at the first step.
"""

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN, VGGStyleDiscriminator
from basicsr.utils.registry import ARCH_REGISTRY

ARCH_REGISTRY.register(UNetDiscriminatorSN)

DISCRIMINATOR_BANDS = 3
"""The GAN and perceptual terms see three bands (``rgb_bands`` of a multi-band network)."""
VGG_INPUT_SIZES = (128, 256)
UNET_MULTIPLE = 8  # three stride-2 convolutions, then skip connections that add feature maps back


def discriminator_problem(network_d: dict, crop: int | None) -> str | None:
    """Why ``network_d`` cannot judge ``crop`` x ``crop`` HR patches of three bands, or None when it can."""
    name = network_d.get('type')
    bands = network_d.get('num_in_ch')
    if name in (VGGStyleDiscriminator.__name__, UNetDiscriminatorSN.__name__) and bands != DISCRIMINATOR_BANDS:
        return (f'network_d.num_in_ch is {bands!r}; the GAN terms show the discriminator {DISCRIMINATOR_BANDS} bands '
                f'(rgb_bands of a multi-band network): set num_in_ch: {DISCRIMINATOR_BANDS}')
    if name == VGGStyleDiscriminator.__name__:
        size = network_d.get('input_size', 128)
        if size not in VGG_INPUT_SIZES:
            return (f'network_d.input_size is {size!r}; VGGStyleDiscriminator takes 128 or 256: set it to '
                    'datasets.train.gt_size (128 or 256)')
        if crop is not None and crop != size:
            return (f'network_d: VGGStyleDiscriminator of input_size {size} cannot judge the {crop} x {crop} crops '
                    f'of datasets.train.gt_size; set gt_size: {size}, or use UNetDiscriminatorSN (any multiple '
                    f'of {UNET_MULTIPLE})')
    if name == UNetDiscriminatorSN.__name__ and crop is not None and crop % UNET_MULTIPLE:
        return (f'network_d: UNetDiscriminatorSN cannot judge the {crop} x {crop} crops of datasets.train.gt_size; '
                f'set gt_size to a multiple of {UNET_MULTIPLE}')
    return None
