"""The per-file options of inference, shared by the Python API and segsr-infer, checked in one place."""

from dataclasses import dataclass, fields, replace
from pathlib import Path

from segsr.data.geotiff import TiffFormat
from segsr.inference.execution.bands import EACH_BAND, BandRequest
from segsr.inference.execution.scene_plan import RadiometryOptions, TilingOptions
from segsr.inference.io.inputs import InputFile, outputs_beside, plan_input
from segsr.sentinel2.product import canonical_band, is_band_name, is_product
from segsr.sentinel2.request import ProductInput
from segsr.utils.errors import SegSRError
from segsr.utils.limits import CALL_PIXELS, TIFF_BLOCK

COMPRESSIONS = ('deflate', 'lzw', 'zstd', 'lzma', 'packbits', 'none')
STRETCHES = ('auto', 'range', 'percentile')
FROM_CARD = ('card_bands',)
"""Options the weights' model card sets, never a flag of segsr-infer."""


@dataclass(frozen=True)
class FileOptions:
    """Everything that decides how one input becomes its output (names as segsr-infer's flags)."""

    tile: int = 256
    overlap: int = 32
    batch: int = 1
    bands: BandRequest = None
    stretch: str = 'auto'
    percentiles: tuple[float, float] = (0.5, 99.5)
    allow_categorical: bool = False
    cog: bool = False
    compress: str = 'deflate'
    blocksize: int | None = None
    save_guidance: bool = False
    uncertainty: bool = False
    enforce_consistency: bool = False
    consistency_report: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    io_threads: bool = True
    resample: bool = False
    mask_classes: tuple[int, ...] = ()
    card_bands: tuple[str, ...] = ()
    """The Sentinel-2 bands the weights' card names: a product's stack where ``bands`` names none (set from
    the card by :func:`with_card_bands`)."""

    def __post_init__(self) -> None:
        if self.tile < 1 or self.batch < 1:
            raise SegSRError(f'--tile ({self.tile}) and --batch ({self.batch}) must be positive')
        if not 0 <= self.overlap <= self.tile:
            raise SegSRError(f'--overlap {self.overlap} must lie between 0 and --tile {self.tile}')
        if self.blocksize is not None and (self.blocksize < 16 or self.blocksize % 16):
            raise SegSRError(f'--blocksize {self.blocksize} must be a positive multiple of 16, e.g. 256 or 512')
        if self.uncertainty and self.save_guidance:
            raise SegSRError('--uncertainty and --save-guidance cannot run together: run the scene once for each')
        if self.blocksize is not None:
            TIFF_BLOCK.check(self.blocksize, f'--blocksize {self.blocksize}')
        CALL_PIXELS.check(self.batch * (self.tile + 2 * self.overlap) ** 2,
                          f'one network call (--batch {self.batch} x (--tile {self.tile} + 2 --overlap '
                          f'{self.overlap})^2)')
        if self.stretch not in STRETCHES:
            raise SegSRError(f'unknown stretch {self.stretch!r}: use auto, range or percentile')
        if self.compress.lower() not in COMPRESSIONS:
            raise SegSRError(f'unknown compression {self.compress!r}: use one of {", ".join(COMPRESSIONS)}')
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise SegSRError(f'percentiles must satisfy 0 <= low < high <= 100, got {low},{high}')
        if self.overwrite and self.skip_existing:
            raise SegSRError('--overwrite and --skip-existing contradict each other: pass one of them')
        if self.mask_classes and not all(isinstance(value, int) for value in self.mask_classes):
            raise SegSRError(f'--mask-classes {self.mask_classes!r}: give SCL class numbers such as 3,8,9,10')
        names = product_band_names(self.bands)
        object.__setattr__(self, 'band_names', names)
        object.__setattr__(self, 'bands', normalised_bands(names_to_positions(self.bands) if names else self.bands))

    @classmethod
    def from_keywords(cls, **options) -> 'FileOptions':
        """The options a caller named; an unknown name is a one-line error listing the known ones."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SegSRError(f'unknown option(s) {", ".join(unknown)}: use {", ".join(sorted(known))}')
        return cls(**options)

    def outputs_of(self, source, image: Path) -> InputFile:
        """``source``'s outputs: ``image`` and, beside it, the guidance, spread and report these options ask for."""
        source = self.as_input(source)
        return outputs_beside(source, image, self.save_guidance, self.uncertainty, self.consistency_report,
                              self.overwrite)

    def plan_input(self, source, folder: Path) -> InputFile:
        """``source``'s outputs in ``folder`` under its own name; a Sentinel-2 product with the bands named."""
        source = self.as_input(source)
        return plan_input(source, folder, self.save_guidance, self.uncertainty, self.consistency_report, self.overwrite)

    def as_input(self, source):
        """A product path becomes the request of its named bands; anything else stays as it is."""
        if isinstance(source, str | Path) and is_product(source):
            return ProductInput(Path(source), self.band_names or self.card_bands or None, self.resample,
                                tuple(self.mask_classes))
        if self.band_names:
            raise SegSRError(f'{source}: band names ({",".join(self.band_names)}) pick bands of Sentinel-2 '
                             'products only; give this input 1-based band numbers (e.g. --bands 4,3,2)')
        return source

    @property
    def tiling(self) -> TilingOptions:
        return TilingOptions(tile=self.tile, overlap=self.overlap, batch=self.batch)

    @property
    def radiometry(self) -> RadiometryOptions:
        return RadiometryOptions(self.bands, self.stretch, tuple(self.percentiles), self.allow_categorical)

    @property
    def tiff_format(self) -> TiffFormat:
        return TiffFormat(cog=self.cog, compress=self.compress, blocksize=self.blocksize)

    def bands_text(self) -> str:
        if self.band_names:
            return ','.join(self.band_names)
        if self.bands is None:
            return 'all'
        if self.bands == EACH_BAND:
            return EACH_BAND
        return ' '.join(','.join(map(str, group)) for group in self.bands)


def product_band_names(bands) -> tuple[str, ...] | None:
    """The band names of ``--bands B04,B03,B02 B08`` in stacking order; None when the bands are numbers."""
    if bands is None or bands == EACH_BAND or isinstance(bands, str):
        return None
    groups = [bands] if all(isinstance(band, str) for band in bands) else list(bands)
    flat = [band for group in groups for band in (group if isinstance(group, list | tuple) else [group])]
    if not any(isinstance(band, str) and band != EACH_BAND for band in flat):
        return None
    if not all(isinstance(band, str) for band in flat):
        raise SegSRError(f'bands {bands!r} mix band names and numbers: name Sentinel-2 bands (B04,B03,B02) '
                         'or number raster bands (4,3,2), not both')
    return tuple(flat)


def names_to_positions(bands) -> tuple[tuple[int, ...], ...]:
    """Named groups as 1-based positions in the stack of all the names, in order: (B04,B03,B02) (B08) -> 1,2,3 4."""
    groups = [bands] if all(isinstance(band, str) for band in bands) else list(bands)
    positions, start = [], 1
    for group in groups:
        group = tuple(group) if isinstance(group, list | tuple) else (group,)
        positions.append(tuple(range(start, start + len(group))))
        start += len(group)
    return tuple(positions)


def normalised_bands(bands) -> BandRequest:
    """``None``, ``'each'`` or 1-based groups; a flat list of numbers is one group, ``'each'`` stands alone."""
    if bands is None or bands == EACH_BAND:
        return bands
    groups = list(bands)
    if EACH_BAND in groups:
        if len(groups) > 1:
            raise SegSRError('--bands each stands alone: drop the other band groups')
        return EACH_BAND
    if groups and all(isinstance(band, int) for band in groups):
        groups = [groups]
    try:
        return tuple(tuple(int(band) for band in group) for group in groups)
    except (TypeError, ValueError):
        raise SegSRError(f'bands {bands!r}: give 1-based band groups such as [(4, 3, 2)] or "each"') from None


def with_card_bands(options: FileOptions, card: dict | None) -> FileOptions:
    """``options`` that stack a product by the bands the model card names, when they are Sentinel-2 bands
    (a network trained on products or their Wald pairs) and ``--bands`` names none."""
    names = tuple((card or {}).get('input', {}).get('bands') or ())
    if options.band_names or not names or not all(map(is_band_name, names)):
        return options
    return replace(options, card_bands=tuple(map(canonical_band, names)))
