"""The per-stage prompts of a published SeG-SR network, rebuilt as its own test run rebuilds them.

The published arch keeps its local prompts in a plain Python list: they are drawn from torch's
random generator while the network is built and never saved. Its test run (basicsr's
``test_pipeline``) seeds with ``manual_seed`` and then builds the network, so the prompts it tests
with are a function of the seed, the network options and the versions of torch and peft. This
module repeats exactly that in a child process: segsr's basicsr compatibility (``segsr/compat.py``,
loaded by path since the published package is also called ``segsr``; the published arch imports
basicsr), the user's checkout of the published repository first on the path, its working directory
(it reads ``./clip/ViT-B-16.pt``), the seeding of basicsr's ``set_random_seed``, then the build of its
``SEGSR`` class; it returns the prompts.
"""

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch
import yaml

from segsr import compat
from segsr.utils.errors import SegSRError

CLIP_FILE = Path('clip') / 'ViT-B-16.pt'
ARCH_FILE = Path('segsr') / 'archs' / 'segsr_arch.py'

CHILD = textwrap.dedent('''
    import importlib.util
    import random
    import sys

    import numpy as np
    import torch
    import yaml

    compat_file, repo, options_file, seed, out = sys.argv[1:]
    spec = importlib.util.spec_from_file_location('segsr_basicsr_compat', compat_file)
    compat = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compat)
    compat.apply()  # before the published arch imports basicsr
    sys.path.insert(0, repo)  # before any other segsr package on the path
    from segsr.archs.segsr_arch import SEGSR  # the published arch

    with open(options_file) as handle:
        options = yaml.safe_load(handle)
    options.pop('type', None)
    seed = int(seed)
    # basicsr's set_random_seed, as the published test run calls it right before building the network
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    network = SEGSR(**options)
    torch.save(torch.stack([p.detach().t().contiguous() for p in network.text_locals]), out)
''')


def published_prompts(repo: str | Path, network_g: dict, seed: int, python: str = sys.executable) -> torch.Tensor:
    """(stages, K, C) local prompts of the published network built from ``repo`` under ``seed``."""
    repo = Path(repo).expanduser().resolve()
    if not (repo / ARCH_FILE).is_file():
        raise SegSRError(f'{repo} has no {ARCH_FILE}; pass --official-repo a checkout of the published SeG-SR code')
    if not (repo / CLIP_FILE).is_file():
        raise SegSRError(f'{repo / CLIP_FILE} is missing; the published code builds its CLIP from it: download it '
                         f'as {CLIP_FILE.parent / "ViT-B-16-url.txt"} says and put it there')
    with tempfile.TemporaryDirectory() as tmp:
        options, out = Path(tmp) / 'network_g.yml', Path(tmp) / 'prompts.pt'
        options.write_text(yaml.safe_dump(network_g))
        try:
            command = [python, '-c', CHILD, compat.__file__, str(repo), str(options), str(seed), str(out)]
            run = subprocess.run(command, cwd=repo, capture_output=True, text=True)
        except OSError as error:
            raise SegSRError(f'cannot run {python} ({error.strerror}); pass --official-python the Python '
                             'of the published code\'s environment') from None
        if run.returncode or not out.is_file():
            last = (run.stderr.strip().splitlines() or ['no output'])[-1]
            raise SegSRError(f'building the published network from {repo} failed ({last}); run it with the Python '
                             'environment the published code needs (--official-python)')
        return torch.load(out, weights_only=True)
