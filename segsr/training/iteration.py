"""What one training iteration consumes and counts: its micro-batches, its skipped and its clipped steps."""

import logging

from segsr.models.precision import MicroStep
from segsr.training.resume import Progress
from segsr.utils.errors import SegSRError


def check_batches_per_epoch(batches: int, accum_iter: int) -> None:
    """An epoch must hold at least one optimiser step's worth of batches, or the run would never step."""
    if batches < accum_iter:
        raise SegSRError(f'datasets.train gives {batches} batches per epoch, fewer than train.accum_iter '
                         f'({accum_iter}) that one iteration takes; lower train.accum_iter or batch_size_per_gpu, '
                         'or raise dataset_enlarge_ratio')


def micro_batches(prefetcher, first: dict, count: int) -> list[dict] | None:
    """The ``count`` batches of one iteration, ``first`` among them; None when the epoch ends before they are
    complete (the epoch's last batches that do not fill an iteration are left out, as drop_last does)."""
    batches = [first]
    while len(batches) < count:
        batch = prefetcher.next()
        if batch is None:
            return None
        batches.append(batch)
    return batches


def train_iteration(model, batches: list[dict], current_iter: int) -> None:
    """One iteration, one optimiser step: each micro-batch fed, its loss backpropagated, the step on the last."""
    for index, batch in enumerate(batches):
        model.micro_step = MicroStep(index, len(batches))
        model.feed_data(batch)
        model.optimize_parameters(current_iter)
    model.micro_step = MicroStep()


def check_finite_step(model, progress: Progress, max_in_row: int, logger: logging.Logger) -> None:
    """Count a skipped non-finite step; stop the run (without saving) after ``max_in_row`` in a row."""
    if not model.last_step_skipped:
        progress.nonfinite_in_row = 0
        return
    progress.nonfinite_in_row += 1
    progress.nonfinite_total += 1
    losses = ', '.join(f'{name}={value}' for name, value in model.get_current_log().items())
    logger.warning(f'Iteration {progress.iteration}: non-finite loss ({losses}); step skipped '
                   f'({progress.nonfinite_in_row} in a row, {progress.nonfinite_total} in total).')
    if progress.nonfinite_in_row >= max_in_row:
        raise SegSRError(
            f'training stopped at iteration {progress.iteration}: the loss was NaN or infinite for {max_in_row} '
            f'iterations in a row (train.max_nonfinite_steps); the last good checkpoint is kept in '
            f'{model.opt["path"]["models"]}; lower the learning rate or check the data, then resume with --auto_resume')


def report_clipping(progress: Progress, max_norm: float, logger: logging.Logger) -> None:
    """At a log line: how many steps since the last one had their gradient norm clipped, and in all."""
    new = progress.clipped_total - progress.clipped_reported
    if new:
        logger.info(f'Gradient norm clipped to {max_norm:g} in {new} step{"s" if new > 1 else ""} since the last '
                    f'report ({progress.clipped_total} of {progress.iteration} in total).')
    progress.clipped_reported = progress.clipped_total
