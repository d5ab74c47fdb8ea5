"""Every `*_dataset.py` here registers its datasets with basicsr on import."""

from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_dataset')
