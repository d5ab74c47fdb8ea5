"""A run over many inputs, in one process or many: plan, check, skip what is done, run, assemble, report.

Every input is checked before the network is loaded. An input that fails (a check, or mid-scene) is
reported and the run goes on. Outputs appear under their final names only by an atomic rename of a
finished file (the image after its guidance maps), so an existing output is a complete one: that is what
``skip_existing`` trusts. Rank 0 keeps the progress bar and the manifest for the whole run.
"""

import functools
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import rasterio
from tqdm import tqdm

from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.scene import (
    FILE_ERRORS,
    GDAL_CACHE_MB,
    RunReport,
    apply_contract,
    one_line,
    upscale_input,
    warn_on_partial_blocks,
)
from segsr.inference.io.assembly import assemble_scene, part_files, part_outputs, remove_parts
from segsr.inference.io.inputs import InputFile, check_input, check_writable, collect_inputs
from segsr.inference.io.manifest import Manifest, manifest_path, record
from segsr.inference.planning.budget import announce, check_budget
from segsr.inference.planning.distributed import Coordinator, Heartbeat, Ranks, detect_ranks, join_run, leave_run
from segsr.inference.planning.work_plan import WorkUnit, plan_units, read_header
from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError
from segsr.utils.files import remove_stale_temp_files

if TYPE_CHECKING:  # the options are made by the entry points above this layer
    from segsr.options.inference import FileOptions

LoadRunner = Callable[[], tuple[TileUpscaler, dict, Radiometry | None]]
"""Loads the network (after the inputs were checked); returns it, the provenance tags of its outputs and the
radiometric contract it was trained with."""


class Run:
    """The state of one process's part of a run."""

    def __init__(self, ranks: Ranks, coordinator: Coordinator, items: list[InputFile], units: list[WorkUnit],
                 options: 'FileOptions', output: Path):
        self.ranks = ranks
        self.coordinator = coordinator
        self.items = items
        self.units = units
        self.options = options
        self.radiometry = options.radiometry  # under the checkpoint's contract once the network is loaded
        self.report = RunReport()
        self.mine = [unit for unit in units if unit.rank == ranks.rank]
        self.owner: dict[Path, int] = {}
        for index, item in enumerate(items):
            for path in item.outputs:
                self.owner.setdefault(path, index)
        self.reporter = ranks.rank == 0 or not ranks.grouped
        self.started = False  # no manifest for a run that stops at its checks, before anything ran
        self.tick_lock = threading.RLock()  # the heartbeat's ticks and the final summary write one file
        self.manifest = self.bar = None
        if self.reporter:
            listed = {unit.index for unit in (units if ranks.grouped else self.mine)}
            self.manifest = Manifest(
                manifest_path(output, ranks),
                [record(items[i].source, 'pending', items[i].image) for i in sorted(listed)],
                {'ranks': ranks.world, 'launcher': ranks.launcher, 'options': repr(options)},
            )
            tiles = sum(unit.tiles for unit in (units if ranks.grouped else self.mine))
            self.bar = tqdm(total=tiles, unit='tile', desc='segsr-infer', dynamic_ncols=True, leave=True)
            self.records_seen = 0

    def check(self, unit: WorkUnit) -> str | None:
        """None when the unit is to run; 'skipped' when its outputs exist and --skip-existing; else the reason."""
        item = self.items[unit.index]
        if self.options.skip_existing and all(path.exists() for path in item.outputs):
            return 'skipped'
        claimed = {path for path in item.outputs if self.owner[path] != unit.index}
        try:
            check_input(item, self.options.bands, self.options.allow_categorical, self.options.overwrite, claimed)
        except FILE_ERRORS as error:
            return one_line(error)
        return None

    def refuse(self, unit: WorkUnit, reason: str, started: float) -> None:
        """An input found unable to run (its check, or its budget once the network is known): reported and left
        out. A band of a split scene announces the reason instead, so the assembling rank reports the scene once
        and removes the bands that did run."""
        if unit.band is not None:
            self.coordinator.put(f'part/{unit.index}/{unit.part}', {'error': reason, 'rank': self.ranks.rank})
        else:
            self.fail(unit, reason, started)

    def fail(self, unit: WorkUnit, reason: str, started: float) -> None:
        tqdm.write(f'skipped {self.items[unit.index].source}: {reason}', file=sys.stderr)  # on a line of its own
        self.publish(unit, 'failed', started, error=reason)

    def publish(self, unit: WorkUnit, status: str, started: float, files: list[Path] | None = None,
                error: str | None = None, parts: list[dict] | None = None) -> None:
        """A finished input; ``parts``: the announcements of the bands of a split one."""
        item = self.items[unit.index]
        tiles, pixels, rank = unit.tiles * unit.parts, unit.pixels * unit.parts, self.ranks.rank
        if parts:
            tiles = sum(part.get('tiles', 0) for part in parts)
            pixels = sum(part.get('pixels', 0) for part in parts)
            rank = ','.join(str(part['rank']) for part in parts)
        if status == 'failed':
            self.report.failures.append((str(item.source), error))
        elif status == 'skipped':
            self.report.skipped.append(item.image)
            self.coordinator.add('tiles', unit.tiles * unit.parts)
        elif files:
            self.report.written += files
        self.coordinator.publish(record(item.source, status, item.image, time.monotonic() - started, tiles, rank,
                                        error, pixels))

    def tick(self) -> None:
        """Rank 0: the bar and the manifest follow what every rank has reported so far."""
        if not self.reporter:
            return
        with self.tick_lock:
            records = self.coordinator.records_since(self.records_seen)
            self.records_seen += len(records)
            for entry in records:
                self.manifest.update(entry)
            finished = sum(self.manifest.count(status) for status in ('done', 'skipped', 'failed'))
            self.bar.n = min(self.coordinator.add('tiles', 0), self.bar.total)
            self.bar.set_postfix_str(f'files {finished}/{len(self.manifest.entries)}', refresh=False)
            self.bar.refresh()
            if self.started:
                self.manifest.write()


def run_unit(run: Run, unit: WorkUnit, upscaler: TileUpscaler, tags: dict, cleaned: set[Path]) -> None:
    """One input, or one band of a split one (written to hidden part files announced to the assembler)."""
    options, coordinator = run.options, run.coordinator
    item = run.items[unit.index]
    folder = item.image.parent
    if run.ranks.launcher == 'none' and folder not in cleaned and folder.is_dir():
        remove_stale_temp_files(folder)
    cleaned.add(folder)
    started = time.monotonic()
    progress = functools.partial(coordinator.add, 'tiles')
    if unit.band is None:
        try:
            written = upscale_input(item, upscaler, options.tiling, run.radiometry, options.tiff_format, tags,
                                    on_tiles=progress, io_threads=options.io_threads)
        except FILE_ERRORS as error:
            run.publish(unit, 'failed', started, error=one_line(error))
            return
        run.publish(unit, 'done', started, written)
        return
    parts = part_files(item, unit.part, unit.parts)
    announcement = {**{key: path and str(path) for key, path in part_outputs(parts).items()}, 'band': unit.band,
                    'rank': run.ranks.rank, 'tiles': unit.tiles, 'pixels': unit.pixels}
    try:
        upscale_input(parts, upscaler, options.tiling, run.radiometry, replace(options.tiff_format, cog=False),
                      tags, band=unit.band, on_tiles=progress, io_threads=options.io_threads)
    except FILE_ERRORS as error:
        announcement['error'] = one_line(error)
    coordinator.put(f'part/{unit.index}/{unit.part}', announcement)


def assemble_unit(run: Run, unit: WorkUnit, upscaler: TileUpscaler, tags: dict, started: float) -> None:
    """Part 0's rank waits for every band of the scene, then writes the output once."""
    parts = [run.coordinator.wait_for(f'part/{unit.index}/{part}') for part in range(unit.parts)]
    errors = [part['error'] for part in parts if part.get('error')]
    item = run.items[unit.index]
    try:
        if errors:
            remove_parts(parts)
            raise SegSRError(errors[0])
        written = assemble_scene(item, parts, upscaler, run.options.tiling, run.radiometry,
                                 run.options.tiff_format, tags)
    except FILE_ERRORS as error:
        run.publish(unit, 'failed', started, error=one_line(error), parts=parts)
        return
    run.publish(unit, 'done', started, written, parts=parts)


def stop_if_nothing_can_run(run: Run, ready: list[WorkUnit]) -> None:
    """A process of its own whose every input failed stops with the last reason, before any manifest is written."""
    if not ready and not run.ranks.grouped and run.report.failures and not run.report.skipped:
        raise SegSRError(f'none of the {len(run.report.failures)} inputs can run: {run.report.failures[-1][1]}')


def within_budget(run: Run, ready: list[WorkUnit], upscaler: TileUpscaler, started: float) -> list[WorkUnit]:
    """The ready units whose outputs fit on the disk (and, for PNG and JPEG, in memory), now that the network's
    scale is known; the others are refused. Warnings (tight disk, very long runs) are printed once per input,
    by the process that runs it or the first band of it."""
    kept, budgets = [], []
    for unit in ready:
        item = run.items[unit.index]
        try:
            budget = check_budget(item, upscaler, replace(run.options, bands=run.radiometry.bands))
        except FILE_ERRORS as error:
            run.refuse(unit, one_line(error), started)
            continue
        kept.append(unit)
        if unit.part == 0:
            budgets.append((item.source, budget))
    announce(budgets, upscaler, run.options.tiling)
    return kept


def execute(run: Run, load: LoadRunner) -> None:
    ranks, coordinator = run.ranks, run.coordinator
    started = time.monotonic()
    if ranks.grouped:  # before any rank writes: a dead writer's partial files of an earlier run
        if ranks.rank == 0:
            remove_stale_temp_files(run.manifest.path.parent)
            coordinator.put('cleaned', True)
        coordinator.wait_for('cleaned')
    ready, assemble = [], []
    for unit in run.mine:
        outcome = run.check(unit)
        if outcome is None:
            ready.append(unit)
            if unit.band is not None and unit.part == 0:
                assemble.append(unit)
        elif unit.band is not None and unit.part > 0:
            run.refuse(unit, outcome, started)
        elif outcome == 'skipped':
            run.publish(unit, 'skipped', started)
        else:
            run.fail(unit, outcome, started)  # the same check fails every band of a scene: no part ran
    stop_if_nothing_can_run(run, ready)
    if not ready:
        run.started = True
        return
    upscaler, tags, contract = load()
    run.radiometry = apply_contract(run.options.radiometry, contract, warn=run.reporter)
    ready = within_budget(run, ready, upscaler, started)
    stop_if_nothing_can_run(run, ready)
    run.started = True  # from here on the manifest is written (not for a run that stopped at its checks)
    if run.reporter:
        warn_on_partial_blocks([run.items[u.index] for u in ready], run.options.tile, upscaler.scale,
                               run.options.tiff_format)
    cleaned: set[Path] = set()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        for unit in ready:
            run_unit(run, unit, upscaler, tags, cleaned)
        for unit in assemble:
            assemble_unit(run, unit, upscaler, tags, started)


def finish(run: Run) -> None:
    """Every rank says it is done; rank 0 waits for all of them, then closes the manifest with its summary."""
    coordinator = run.coordinator
    coordinator.put(f'finished/{run.ranks.rank}', True)
    if not run.reporter:
        return
    if run.ranks.grouped:
        for peer in range(1, run.ranks.world):
            coordinator.wait_for(f'finished/{peer}')
    with run.tick_lock:
        run.tick()
        run.report.summary = run.manifest.finish()
        run.manifest.write()
    failed = [(entry['input'], entry['error']) for entry in run.manifest.entries.values()
              if entry['status'] == 'failed']
    run.report.failed_elsewhere = len(failed) - len(run.report.failures)
    run.report.last_failure = (run.report.failures or failed or [None])[-1]


def run_inputs(
    pattern: str,
    output: str | Path,
    options: 'FileOptions',
    load: LoadRunner,
    *,
    recursive: bool = False,
    shard: str | None = None,
    rank_timeout: float = 10.0,
) -> RunReport:
    """What segsr-infer does: every input under ``pattern`` into ``output``, split over the run's processes."""
    ranks = detect_ranks(shard)
    output = Path(output)
    check_writable(output)
    items = [options.plan_input(source, output / folder)
             for source, folder in collect_inputs(pattern, recursive, output)]
    units = plan_units([read_header(item.source, options.bands) for item in items], ranks.world, options.tiling,
                       split=ranks.grouped)
    coordinator = join_run(ranks, rank_timeout)
    run = Run(ranks, coordinator, items, units, options, output)
    try:
        with Heartbeat(coordinator, run.tick):
            execute(run, load)
            finish(run)
    except KeyboardInterrupt:
        if coordinator.failure:
            raise SegSRError(coordinator.failure) from None
        raise
    finally:
        if run.reporter:
            try:  # the records that arrived before an interruption still reach the manifest
                run.tick()
            except (RuntimeError, OSError):
                if run.started:
                    run.manifest.write()
            run.bar.close()
        leave_run(coordinator)
    return run.report
