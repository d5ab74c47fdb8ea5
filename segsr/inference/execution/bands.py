"""Which source bands go through the network together, and where each lands in the output."""

from segsr.utils.errors import SegSRError

EACH_BAND = 'each'
"""``--bands each``: every band on its own, gray replicated to an RGB network's three channels."""
RGB_CHANNELS = 3

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
    """0-based band groups, each one network pass: ``channels`` bands, or for an RGB network one band replicated
    to its three channels (a network of another band count learnt what each band is, so it takes them all)."""
    check_band_numbers(requested, band_count, path)
    data_bands = [band for band in range(band_count) if band != alpha_band]
    if requested == EACH_BAND:
        groups = [[band] for band in data_bands]
    elif requested is None:
        groups = [data_bands]
    else:
        groups = [[band - 1 for band in group] for group in requested]
    for group in groups:
        if len(group) != channels and not (len(group) == 1 and channels == RGB_CHANNELS):
            raise SegSRError(f'{path} gives {len(group)} band(s) to a network that takes {channels}: '
                             f'{band_fix(channels)}')
    return groups


def band_fix(channels: int) -> str:
    """What to pass instead: an RGB network also takes single bands (as gray); another takes its own band count."""
    if channels == RGB_CHANNELS:
        return 'choose groups of 3 with --bands (e.g. --bands 3,2,1) or --bands each'
    example = ','.join(str(b) for b in range(1, channels + 1))
    return (f'it was trained on {channels} bands, so give it {channels} in its training order with --bands '
            f'(e.g. --bands {example}) or an input of {channels} bands')


def output_bands(groups: list[list[int]]) -> list[int]:
    """Output bands follow the source's band order, whatever order the groups feed the network in."""
    return sorted(band for group in groups for band in group)
