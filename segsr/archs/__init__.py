"""Every `*_arch.py` here registers its architectures with basicsr on import."""

from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_arch')
