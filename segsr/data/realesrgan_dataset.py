"""Real-ESRGAN's HR-only training dataset under the name its option files (and HAT's Real-HAT files) use.

The dataset is basicsr's own, which registers it as ``RealESRGANDataset_basicsr`` only. It gives HR crops with
the blur and sinc kernels of the first degradation stage; the training pairs are made on the model's device by
``segsr.degradations`` (``datasets.train.degradation: realesrgan``, implied by this type).
"""

from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.utils.registry import DATASET_REGISTRY

DATASET_REGISTRY.register(RealESRGANDataset)
