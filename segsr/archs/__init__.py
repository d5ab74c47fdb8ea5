"""Every `*_arch.py` here registers its networks with basicsr on import.

The layers they are built from live in ``segsr.nn`` and the CLIP models in ``segsr.clip``.
"""

from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_arch')
