"""Evaluate trained weights: PSNR/SSIM per image and on average, written under results/<name>/.

    python segsr/test.py -opt options/test/demo_HAT_SRx4.yml

The work is done in ``segsr/evaluation.py``.
"""

import sys
from pathlib import Path

if __package__ in (None, ''):  # run as a script: import this checkout's package, not the folder segsr/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from segsr.evaluation import main  # noqa: E402

if __name__ == '__main__':
    main()
