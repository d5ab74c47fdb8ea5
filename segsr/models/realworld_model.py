"""The model types of HAT's Real-HAT and Real-ESRGAN's option files, on segsr's models.

``RealESRNetModel`` and ``RealHATMSEModel`` are :class:`SegSRModel` (HAT's with its test-time padding);
``RealESRGANModel`` and ``RealHATGANModel`` are :class:`SegSRGANModel`. Each makes its training pairs from
HR batches through :meth:`SegSRModel.degrade`, the hook of the real-world degradation feed; a paired batch
(``lq`` given by the dataset) is trained on as it is. They run on any device, with segsr's checkpoints,
exact resume and NaN-step skipping.
"""

from basicsr.utils.registry import MODEL_REGISTRY

from segsr.models.gan_model import SegSRGANModel
from segsr.models.hat_model import HATModel
from segsr.models.sr_model import SegSRModel


@MODEL_REGISTRY.register()
class RealESRNetModel(SegSRModel):
    """``model_type: RealESRNetModel``: pixel-loss training on real-world degraded pairs."""


@MODEL_REGISTRY.register()
class RealESRGANModel(SegSRGANModel):
    """``model_type: RealESRGANModel``: GAN and perceptual training on real-world degraded pairs."""


@MODEL_REGISTRY.register()
class RealHATMSEModel(HATModel):
    """``model_type: RealHATMSEModel`` of HAT's real-world files: RealESRNetModel that validates as HATModel."""


@MODEL_REGISTRY.register()
class RealHATGANModel(SegSRGANModel, HATModel):
    """``model_type: RealHATGANModel`` of HAT's real-world files: RealESRGANModel that validates as HATModel."""
