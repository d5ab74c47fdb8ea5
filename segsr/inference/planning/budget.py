"""What one input will cost, known once the network's scale is: output size on disk or in memory, and tiles.

An output the disk cannot hold, or a PNG/JPEG output too large to hold in memory, is refused before the
first tile runs; a run of very many tiles is announced with its size, so a mistaken input (a sparse
200000-pixel GeoTIFF) is noticed in seconds, not after days.
"""

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from segsr.inference.execution.bands import band_groups, output_bands
from segsr.inference.execution.tiling import count_tiles
from segsr.inference.io.inputs import InputFile, is_raster, open_source
from segsr.utils.limits import CALLS_WARNING, IMAGE_PIXELS, check_disk_space

FLOAT_BYTES = np.dtype(np.float32).itemsize  # guidance maps and spread


@dataclass(frozen=True)
class Budget:
    """Network calls one input takes, and warnings about its size."""

    calls: int
    warnings: list[str]


def check_budget(item: InputFile, upscaler, options) -> Budget:
    """Raise a one-line error when ``item``'s outputs cannot be made here by ``upscaler`` (its ``scale``,
    ``in_channels``, ``map_channels``) with ``options`` (a :class:`segsr.options.inference.FileOptions`);
    else its network calls and warnings."""
    scale = upscaler.scale
    source = open_source(item.source)
    try:
        groups = band_groups(options.bands, source.band_count, source.alpha_band, upscaler.in_channels, item.source)
        height, width = source.height * scale, source.width * scale
        kept = len(output_bands(groups)) + (source.alpha_band is not None and not is_raster(item.source))
        raw = height * width * kept * source.dtype.itemsize
        if item.maps is not None:
            raw += height * width * upscaler.map_channels * len(groups) * FLOAT_BYTES
        if item.spread is not None:
            raw += height * width * len(groups) * FLOAT_BYTES
        calls = math.ceil(count_tiles(source.height, source.width, options.tile, options.overlap) / options.batch)
        calls *= len(groups)
    finally:
        source.close()
    if not is_raster(item.source):
        IMAGE_PIXELS.check(height * width, f'the x{scale} output of {item.source} ({width}x{height}, encoded whole '
                                           'in memory; a GeoTIFF input is written block by block instead)')
    disk = check_disk_space(raw, options.compress != 'none' or not is_raster(item.source), item.image.parent,
                            f'the output of {item.source}')
    return Budget(calls, [disk] if disk else [])


def seconds_per_call(upscaler, tiling) -> float:
    """One network call on a batch of blank tiles, timed (the first call's warm-up included, so a bound from above)."""
    side = tiling.tile + 2 * tiling.overlap
    start = time.perf_counter()
    upscaler(np.zeros((tiling.batch, upscaler.in_channels, side, side), np.float32))
    return time.perf_counter() - start


def duration_warning(source, calls: int, seconds: float) -> str:
    hours = calls * seconds / 3600
    return (f'{source} takes {calls:,} network calls (over {CALLS_WARNING.variable}={CALLS_WARNING.value():,}); '
            f'at {seconds:.2f} s per call, as one took here, that is about {hours:,.1f} hours: stop it with Ctrl-C '
            '(finished files are kept) if that is not meant')


def announce(budgets: list[tuple[object, Budget]], upscaler, tiling) -> None:
    """Print the warnings of ``(source, budget)`` pairs on stderr; inputs of very many network calls get an
    estimate of their time, from one call timed for all of them."""
    for _, budget in budgets:
        for warning in budget.warnings:
            tqdm.write(f'warning: {warning}', file=sys.stderr)  # beside the run's progress bar
    long = [(source, budget.calls) for source, budget in budgets if budget.calls > CALLS_WARNING.value()]
    if long:
        seconds = seconds_per_call(upscaler, tiling)
        for source, calls in long:
            tqdm.write(f'warning: {duration_warning(source, calls, seconds)}', file=sys.stderr)
