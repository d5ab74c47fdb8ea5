"""Every `*_model.py` here registers its models with basicsr on import."""

from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_model')
