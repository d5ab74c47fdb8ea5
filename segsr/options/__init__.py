"""Reading and checking options: safe YAML, the option-file schema, network options checked against their
constructors, per-file inference options and the training/test command line.

``from segsr.options import parse_command_line`` (the command line's public names) keeps working: they are
looked up in :mod:`segsr.options.cli` on first use, so that importing a light module of this package (the
YAML reader, the registries) does not import the datasets and archs the command line needs.
"""

import importlib


def __getattr__(name: str):
    if name.startswith('_') or name == 'cli':  # 'cli' itself is asked for while it is being imported
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    cli = importlib.import_module('segsr.options.cli')

    try:
        return getattr(cli, name)
    except AttributeError:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}') from None
