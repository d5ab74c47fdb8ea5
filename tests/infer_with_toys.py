"""segsr-infer with the tests' toy networks registered, for runs in child processes (torchrun, srun-like ranks).

    python tests/infer_with_toys.py --weights toy.pth --input in/ --output out/ [segsr-infer options]

``SEGSR_TEST_SLOW_SECONDS`` makes every network call sleep that long, so a test can act mid-run.
"""

import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from raster_fakes import BicubicToySR, register_toy  # noqa: E402

from segsr.infer import main  # noqa: E402

SLOW_SECONDS = float(os.environ.get('SEGSR_TEST_SLOW_SECONDS', 0))

if __name__ == '__main__':
    register_toy()
    if SLOW_SECONDS:
        forward = BicubicToySR.forward

        def slow_forward(self, x):
            time.sleep(SLOW_SECONDS)
            return forward(self, x)

        BicubicToySR.forward = slow_forward
    main()
