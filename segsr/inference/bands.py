"""Which source bands go through the network together, and where each lands in the output."""

from segsr.utils.errors import SegSRError

EACH_BAND = 'each'
"""``--bands each``: every band on its own, gray replicated to the network's channels."""

BandRequest = tuple[tuple[int, ...], ...] | str | None
"""1-based band groups as given on the command line, ``EACH_BAND``, or None for the default."""


def check_band_numbers(requested: BandRequest, band_count: int, path) -> None:
    """Band numbers exist and no band is asked for twice (one output band per source band)."""
    if requested is None or requested == EACH_BAND:
        return
    seen = set()
    for band in (band for group in requested for band in group):
        if not 1 <= band <= band_count:
            raise SegSRError(
                f'band {band} is out of range: {path} has {band_count} bands, pick --bands between 1 and {band_count}'
            )
        if band in seen:
            raise SegSRError(f'band {band} is asked for twice in --bands: each band may appear in one group only')
        seen.add(band)


def band_groups(
    requested: BandRequest, band_count: int, alpha_band: int | None, channels: int, path
) -> list[list[int]]:
    """0-based band groups, each one network pass: ``channels`` bands, or one band replicated to them."""
    check_band_numbers(requested, band_count, path)
    data_bands = [band for band in range(band_count) if band != alpha_band]
    if requested == EACH_BAND:
        return [[band] for band in data_bands]
    if requested is None:
        groups = [data_bands]
    else:
        groups = [[band - 1 for band in group] for group in requested]
    for group in groups:
        if len(group) not in (channels, 1):
            example = ','.join(str(b) for b in range(channels, 0, -1))
            raise SegSRError(
                f'{path} gives {len(group)} bands to a network that takes {channels}: '
                f'choose groups of {channels} with --bands (e.g. --bands {example}) or --bands each'
            )
    return groups


def output_bands(groups: list[list[int]]) -> list[int]:
    """Output bands follow the source's band order, whatever order the groups feed the network in."""
    return sorted(band for group in groups for band in group)
