"""Every `*_metric.py` here registers its metrics with basicsr on import, for use in ``val.metrics``; the other
modules hold the pure functions they wrap (docs/evaluation.md)."""

from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_metric')
