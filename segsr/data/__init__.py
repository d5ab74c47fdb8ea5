"""Every `*_dataset.py` here registers its datasets with basicsr on import; basicsr's own name their bad files."""

from segsr.data import basicsr_reads  # noqa: F401  (wraps basicsr's dataset reads)
from segsr.utils.registration import import_modules

import_modules(__name__, __file__, '_dataset')
