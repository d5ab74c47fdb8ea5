"""Train a super-resolution network from a basicsr-style YAML file.

    python segsr/train.py -opt options/train/demo_HAT_SRx4.yml [--auto_resume]
    torchrun --nproc_per_node=N segsr/train.py -opt X.yml --launcher pytorch

Path through the code: options (``segsr/options/cli.py``) -> training loop (``segsr/training/loop.py``) ->
datasets (``segsr/data``) -> model (``segsr/models/sr_model.py``) -> network (``segsr/archs``).
"""

import sys
from pathlib import Path

if __package__ in (None, ''):  # run as a script: import this checkout's package, not the folder segsr/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from segsr.training import main  # noqa: E402

if __name__ == '__main__':
    main()
