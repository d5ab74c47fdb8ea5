"""The experiment folder of a run: locked, created only once the run is built, and its log file attached."""

import logging
import logging.handlers
from pathlib import Path

from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs, mkdir_and_rename
from basicsr.utils.options import copy_opt_file, dict2str

from segsr.utils.files import remove_stale_temp_files
from segsr.utils.fresh_folder import FreshFolder
from segsr.utils.run_lock import LOCK_NAME, RunLock


def run_logger(opt: dict) -> logging.Logger:
    """basicsr's root logger: INFO on rank 0, errors only elsewhere."""
    logger = get_root_logger(logger_name='basicsr')
    logger.setLevel(logging.INFO if opt['rank'] == 0 else logging.ERROR)
    return logger


def open_experiment(opt: dict, opt_file: str, resumed: bool, logger: logging.Logger,
                    early_log: logging.handlers.MemoryHandler,
                    created: list[FreshFolder]) -> tuple[RunLock | None, logging.Handler | None]:
    """Lock the experiment folder, archive an earlier run there (fresh start only, as basicsr does), create the
    folders, remove temporary files of dead runs and attach the log file; rank 0 does the writing.

    Called only once everything the run needs is built, so a start that fails never archives or writes.
    The folders a fresh start creates are added to ``created``, so a run that fails before its first
    checkpoint can be undone. Returns the lock (held for the run's life) and the log file's handler.
    """
    if opt['rank'] != 0:
        early_log.close()
        return None, None
    experiment = Path(opt['path']['experiments_root'])
    if resumed:
        lock = RunLock.acquire(experiment)
        for key in ('models', 'training_states'):
            Path(opt['path'][key]).mkdir(parents=True, exist_ok=True)
    else:
        # a folder without a lock file has never held a segsr run that could still be live: no file is added to it
        earlier = RunLock.acquire(experiment) if (experiment / LOCK_NAME).is_file() else None
        # renames an earlier folder to <name>_archived_<time>; its lock moves along with it
        created.append(FreshFolder.create(experiment, lambda: make_exp_dirs(opt)))
        lock = RunLock.acquire(experiment)
        if earlier is not None:
            earlier.release()
        if opt['logger']['use_tb_logger'] and 'debug' not in opt['name']:
            tb_folder = Path(opt['root_path']) / 'tb_logger' / opt['name']
            created.append(FreshFolder.create(tb_folder, lambda: mkdir_and_rename(str(tb_folder))))
    copy_opt_file(opt_file, opt['path']['experiments_root'])
    handler = logging.FileHandler(Path(opt['path']['log']) / f"train_{opt['name']}_{get_time_str()}.log", 'w')
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s: %(message)s'))
    logger.addHandler(handler)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    logger.removeHandler(early_log)
    early_log.setTarget(handler)
    early_log.close()  # flushes what was logged while the run was being built into the log file
    for path in remove_stale_temp_files(experiment, recursive=True):  # segsr made every folder in it
        logger.info(f'Removed {path.relative_to(experiment)}, a temporary file of a run that no longer exists.')
    return lock, handler


def saved_checkpoints(opt: dict) -> bool:
    """Whether the experiment holds weights or training states (of this run, on a fresh start), worth keeping."""
    return any(any(Path(opt['path'][key]).glob('*')) for key in ('models', 'training_states')
               if Path(opt['path'][key]).is_dir())


