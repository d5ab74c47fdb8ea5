"""Training states (``<iter>.state``) checked before they are resumed from.

torch loads an optimiser state of another network or optimiser without complaint when the counts of
parameters agree, and the run then fails at its first step, or trains on with another optimiser's
moments. The checks here compare what the state holds with what this run built, and say which differs.
"""

import torch

from segsr.utils.errors import SegSRError

STATE_KEYS = ('epoch', 'iter', 'optimizers', 'schedulers')
# Flags torch added to the optimisers over its versions: a state written by another torch version may lack them.
VERSION_FLAGS = frozenset({'foreach', 'capturable', 'differentiable', 'fused', 'maximize', 'decoupled_weight_decay',
                           'initial_lr'})


def check_state_layout(state: object, path: str) -> None:
    """A training state is a mapping with an iteration, an epoch, and optimiser and scheduler states."""
    missing = [key for key in STATE_KEYS if key not in state] if isinstance(state, dict) else list(STATE_KEYS)
    if missing:
        raise SegSRError(f'{path} is not a training state (it lacks {", ".join(missing)}); set path.resume_state to '
                         'a file in experiments/<name>/training_states')
    if not (isinstance(state['iter'], int) and state['iter'] >= 0 and isinstance(state['optimizers'], list)
            and isinstance(state['schedulers'], list)):
        raise SegSRError(f'{path} is not a training state segsr wrote (iter {state["iter"]!r}); set '
                         'path.resume_state to a file in experiments/<name>/training_states')


def _group_problem(kind: str, own: dict, saved: dict, state: dict) -> str | None:
    foreign = sorted(set(saved) - set(own) - VERSION_FLAGS - {'params'})
    if foreign:
        return f'it holds the state of another optimiser (settings {", ".join(foreign)}, which {kind} lacks)'
    params = own['params']
    if len(saved['params']) != len(params):
        return f'it holds {len(saved["params"])} parameter tensors, this network {len(params)}: another network'
    for number, (index, param) in enumerate(zip(saved['params'], params, strict=True)):
        for name, value in (state.get(index) or {}).items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                return (f'its {name} of parameter {number} has shape {tuple(value.shape)}, the network\'s '
                        f'{tuple(param.shape)}: another network')
    return None


def resume_problem(optimizers: list, schedulers: list, state: dict) -> str | None:
    """Why ``state`` cannot resume a run with these optimisers and schedulers, or None when it fits."""
    saved_optimizers, saved_schedulers = state['optimizers'], state['schedulers']
    if len(saved_optimizers) != len(optimizers) or len(saved_schedulers) != len(schedulers):
        return (f'it holds {len(saved_optimizers)} optimisers and {len(saved_schedulers)} schedulers, this run '
                f'builds {len(optimizers)} and {len(schedulers)}')
    for optimizer, saved in zip(optimizers, saved_optimizers, strict=True):
        if not (isinstance(saved, dict) and isinstance(saved.get('param_groups'), list)
                and isinstance(saved.get('state'), dict)):
            return 'its optimiser state is not one torch writes'
        own_groups = optimizer.param_groups
        if len(saved['param_groups']) != len(own_groups):
            return f'it holds {len(saved["param_groups"])} parameter groups, this run {len(own_groups)}'
        for own, group in zip(own_groups, saved['param_groups'], strict=True):
            problem = _group_problem(type(optimizer).__name__, own, group, saved['state']) \
                if isinstance(group, dict) and isinstance(group.get('params'), list) else \
                'its parameter groups are not ones torch writes'
            if problem:
                return problem
    return None
