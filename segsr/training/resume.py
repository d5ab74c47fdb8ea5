"""Where a run continues from: the newest readable training state, agreed by every process, and what it restores."""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from basicsr.utils import check_resume

from segsr.utils.errors import SegSRError
from segsr.utils.rng import restore_rng_state
from segsr.utils.training_state import check_state_layout
from segsr.weights.files import existing_weights, load_checkpoint


def candidate_states(states_dir: Path) -> list[Path]:
    """Training states in ``states_dir``, newest (highest iteration) first."""
    states = [path for path in states_dir.glob('*.state') if path.stem.isdigit()] if states_dir.is_dir() else []
    return sorted(states, key=lambda path: int(path.stem), reverse=True)


def newest_state(states_dir: Path, models_dir: Path, logger: logging.Logger,
                 networks: tuple[str, ...] = ('g',)) -> tuple[Path, dict] | None:
    """The newest state that loads and whose ``net_<x>_<iter>`` weights (safetensors or .pth) load for every
    network ``x`` of the run (the generator, and a GAN's discriminator), with its content; unreadable ones are
    skipped with a warning."""
    for path in candidate_states(states_dir):
        try:
            state = load_checkpoint(path)
            check_state_layout(state, str(path))
            for network in networks:
                load_checkpoint(models_dir / f'net_{network}_{path.stem}.pth')
        except SegSRError as err:
            logger.warning(f'Skipping training state {path.name}: {err}')
            continue
        return path, state
    return None


def agreed_resume_state(opt: dict, logger: logging.Logger) -> tuple[str | None, dict | None]:
    """The state to resume from, chosen by rank 0 and shared, so every process resumes the same one.

    Returns its path and, where this process already read it while choosing, its content.
    """
    path, state = opt['path'].get('resume_state'), None
    if opt['auto_resume'] and opt['rank'] == 0:
        networks = tuple(key.removeprefix('network_') for key in opt if key.startswith('network_'))
        newest = newest_state(Path(opt['path']['training_states']), Path(opt['path']['models']), logger, networks)
        if newest is not None:
            path, state = str(newest[0]), newest[1]
        elif not path:
            report_archived_runs(Path(opt['path']['experiments_root']), logger)
    choice = [path]
    if opt['dist']:
        torch.distributed.broadcast_object_list(choice, src=0)
    return choice[0], state


def report_archived_runs(experiment: Path, logger: logging.Logger) -> None:
    """--auto_resume found nothing: name the archived runs of this name, which may hold the run meant."""
    archived = sorted(path.name for path in experiment.parent.glob(f'{experiment.name}_archived_*') if path.is_dir())
    if archived:
        logger.warning(f'--auto_resume: {experiment} holds no training state; archived runs of this name: '
                       f'{", ".join(archived)}. To continue one, set path.resume_state to a state in its '
                       'training_states folder; this run starts from iteration 0.')


def load_resume_state(opt: dict, logger: logging.Logger) -> dict | None:
    """Find the state to resume from: the newest readable one under this experiment's root, or ``path.resume_state``."""
    path, state = agreed_resume_state(opt, logger)
    if not path:
        return None
    opt['path']['resume_state'] = path
    if state is None:
        state = load_checkpoint(path)
    check_state_layout(state, path)
    check_resume(opt, state['iter'])
    for key, value in opt['path'].items():  # basicsr names .pth weights; a run may have written safetensors
        if key.startswith('pretrain_network_') and value:
            opt['path'][key] = str(existing_weights(value))
    return state


@dataclass
class Progress:
    """Where the run stands: the iteration done last, its epoch, and the samples of that epoch used so far."""

    iteration: int = 0
    epoch: int = 0
    epoch_samples: int = 0
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    clipped_total: int = 0
    clipped_reported: int = 0

    @classmethod
    def from_state(cls, state: dict, logger: logging.Logger) -> 'Progress':
        sampler = state.get('sampler')
        if sampler is None:
            logger.warning(f'The training state of iteration {state["iter"]} has no data-sampler position; '
                           f'epoch {state["epoch"]} restarts from its first batch.')
        clipped = state.get('clipped_steps', 0)
        return cls(iteration=state['iter'], epoch=state['epoch'],
                   epoch_samples=sampler['epoch_samples'] if sampler else 0,
                   nonfinite_total=state.get('nonfinite_steps', 0), clipped_total=clipped, clipped_reported=clipped)


def restore_rng(state: dict, opt: dict, logger: logging.Logger) -> None:
    states = state.get('rng')
    if states is None or len(states) != opt['world_size']:
        logger.warning(f'The training state holds random-generator states of '
                       f'{len(states) if states else 0} processes, this run has {opt["world_size"]}; '
                       'generators keep their fresh seeds, so random draws differ from the interrupted run.')
        return
    restore_rng_state(states[opt['rank']])


