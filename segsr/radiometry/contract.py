"""The radiometric contract: how raw pixel values become network values, the same in training and at inference.

A contract maps each band in two affine steps: raw -> physical (``scale`` and ``offset`` given in the
options, or read from each file's metadata) and physical -> network (the physical ``range`` [low, high]
goes to [0, 1]). Both steps are affine, so the whole map is one :class:`BandStretch` per file and its
inverse is exact. Nothing is clipped: values outside the range reach the network outside [0, 1].

Without a ``radiometry`` section the contract is the 8-bit photograph convention, 0..255 -> 0..1, and
nothing in the data path changes. The contract (with the band list) is stored in every checkpoint, so
inference reads a new scene with the numbers the network was trained on, never with per-scene statistics.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from segsr.utils.errors import SegSRError

SECTION_KEYS = ('scale', 'offset', 'from_metadata', 'range')
ADD_OFFSET_TAG = 'BOA_ADD_OFFSET'
QUANTIFICATION_TAGS = ('BOA_QUANTIFICATION_VALUE', 'QUANTIFICATION_VALUE')
"""The Sentinel-2 L2A convention: reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE."""


@dataclass(frozen=True)
class BandStretch:
    """A per-band affine map: ``low`` goes to 0 and ``high`` to 1 (in raw units); nothing saturates."""

    low: np.ndarray
    high: np.ndarray

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` source values -> float32, [0, 1] for values inside the reference range."""
        low, span = self._columns()
        return ((values.astype(np.float64) - low) / span).astype(np.float32)

    def from_unit(self, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(C, h, w)`` network output -> source dtype; integers are rounded, and every type is
        clamped to its own range only (a uint16 cannot hold -3 or 70000, a float32 cannot hold 1e39)."""
        low, span = self._columns()
        restored = values.astype(np.float64) * span + low
        dtype = np.dtype(dtype)
        info = np.iinfo(dtype) if dtype.kind in 'iu' else np.finfo(dtype)
        if dtype.kind in 'iu':
            restored = np.rint(restored)
        return np.clip(restored, info.min, info.max).astype(dtype)

    def select(self, positions: list[int]) -> 'BandStretch':
        """The maps of some of the bands, in the given order."""
        return BandStretch(self.low[positions], self.high[positions])

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.low.astype(np.float64)[:, None, None]
        span = np.maximum(self.high - self.low, 1e-12).astype(np.float64)[:, None, None]
        return low, span


@dataclass(frozen=True)
class BandCalibration:
    """raw -> physical for the bands of one file: physical = raw * scale + offset."""

    scale: np.ndarray
    offset: np.ndarray


def per_band(value: object, bands: int | None, name: str) -> np.ndarray:
    """One number for every band, or one per band; a float64 array."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.ndim != 1 or not np.all(np.isfinite(values)) or (bands and values.size not in (1, bands)):
        count = f'one number or {bands}' if bands else 'one number or one per band'
        raise SegSRError(f'radiometry.{name}: expected {count} finite numbers, got {value!r}')
    return values


@dataclass(frozen=True)
class Radiometry:
    """The contract: ``bands`` (1-based source bands in network channel order, None = all), raw -> physical
    (``scale``/``offset``, or None with ``from_metadata``), and the physical ``low``..``high`` that maps to 0..1.

    Arrays hold one value for every band or one per band.
    """

    low: np.ndarray
    high: np.ndarray
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None
    bands: tuple[int, ...] | None = None

    @property
    def from_metadata(self) -> bool:
        return self.scale is None

    @property
    def is_default(self) -> bool:
        """The 8-bit photograph map every model had before contracts existed (whatever the band list)."""
        return replace(self, bands=None) == DEFAULT_RADIOMETRY

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Radiometry) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    @classmethod
    def from_options(cls, section: dict | None, bands: Sequence[int] | None = None) -> 'Radiometry':
        """The option file's ``radiometry`` section (None: the 8-bit default) with the dataset's band list."""
        band_tuple = tuple(int(band) for band in bands) if bands else None
        if section is None:
            return cls(DEFAULT_RADIOMETRY.low, DEFAULT_RADIOMETRY.high, DEFAULT_RADIOMETRY.scale,
                       DEFAULT_RADIOMETRY.offset, band_tuple)
        unknown = [key for key in section if key not in SECTION_KEYS]
        if unknown:
            raise SegSRError(f'radiometry.{unknown[0]}: unknown key; known keys: {", ".join(SECTION_KEYS)}')
        count = len(band_tuple) if band_tuple else None
        if 'range' not in section:
            raise SegSRError('radiometry.range: missing; add the physical values that map to 0 and 1, '
                             'e.g. range: [0.0, 1.0] for reflectance')
        low, high = parse_range(section['range'], count)
        from_metadata = bool(section.get('from_metadata', False))
        if from_metadata and ('scale' in section or 'offset' in section):
            raise SegSRError('radiometry: from_metadata reads scale and offset from each file; '
                             'drop scale/offset, or set from_metadata: false')
        if from_metadata:
            return cls(low, high, None, None, band_tuple)
        scale, offset = parse_calibration(section.get('scale', 1.0), section.get('offset', 0.0), count)
        return cls(low, high, scale, offset, band_tuple)

    def to_dict(self) -> dict:
        """Plain lists and numbers, as stored in a checkpoint beside ``network_g``."""
        return {
            'bands': list(self.bands) if self.bands else None,
            'from_metadata': self.from_metadata,
            'scale': None if self.scale is None else self.scale.tolist(),
            'offset': None if self.offset is None else self.offset.tolist(),
            'range': [self.low.tolist(), self.high.tolist()],
        }

    @classmethod
    def of_options(cls, opt: dict) -> 'Radiometry':
        """The contract the resolved options carry (``opt['contract']``), else the 8-bit default."""
        return cls.from_dict(opt['contract']) if opt.get('contract') else cls.from_options(None)

    @classmethod
    def from_dict(cls, stored: dict) -> 'Radiometry':
        """A contract as :meth:`to_dict` stored it (in a checkpoint or the resolved options), checked exactly as
        an option file's section is: a stored ``scale: NaN`` or a range with high below low is refused."""
        bands = tuple(int(band) for band in stored['bands']) if stored.get('bands') else None
        count = len(bands) if bands else None
        low, high = (np.atleast_1d(np.asarray(values, dtype=np.float64)) for values in stored['range'])
        if low.ndim != 1 or low.shape != high.shape:
            raise SegSRError(f'radiometry.range: expected one low and one high per band, got {stored["range"]!r}')
        low, high = parse_range(np.stack([low, high], axis=1).tolist(), count)
        if stored.get('scale') is None and stored.get('offset') is None:
            return cls(low, high, None, None, bands)
        scale, offset = parse_calibration(stored.get('scale'), stored.get('offset'), count)
        return cls(low, high, scale, offset, bands)

    def calibration(self, metadata: BandCalibration | None, source: str) -> BandCalibration:
        """raw -> physical for one file: the contract's own numbers, or the file's metadata."""
        if not self.from_metadata:
            return BandCalibration(self.scale, self.offset)
        if metadata is None:
            raise SegSRError(f'{source} carries no scale/offset metadata, which radiometry.from_metadata needs; '
                             'set radiometry.scale and radiometry.offset instead')
        try:
            parse_calibration(metadata.scale, metadata.offset, metadata.scale.size)
        except SegSRError as error:
            raise SegSRError(f'{source}: its metadata gives {error}; fix the file\'s scale/offset metadata') from None
        return metadata

    def stretch(self, calibration: BandCalibration, bands: int) -> BandStretch:
        """The raw-unit map of ``bands`` bands: raw values that are ``low``/``high`` physically go to 0/1."""
        sizes = {values.size for values in (calibration.scale, calibration.offset, self.low, self.high)}
        if not sizes <= {1, bands}:
            raise SegSRError(f'radiometry gives {max(sizes)} values per band but the data has {bands} bands; '
                             'list the bands (datasets.*.bands) or give one value for all')
        scale, offset = (np.broadcast_to(values, bands) for values in (calibration.scale, calibration.offset))
        low, high = (np.broadcast_to(values, bands) for values in (self.low, self.high))
        return BandStretch((low - offset) / scale, (high - offset) / scale)

    def for_bands(self, bands: Sequence[int]) -> 'Radiometry':
        """The contract of some of its bands (1-based source numbers), in the given order."""
        if not self.bands:
            return self
        missing = [band for band in bands if band not in self.bands]
        if missing:
            raise SegSRError(f'band {missing[0]} is not in the radiometric contract (bands '
                             f'{",".join(map(str, self.bands))}); pick those bands with --bands')
        positions = [self.bands.index(band) for band in bands]

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return values if values is None or values.size == 1 else values[positions]

        return Radiometry(pick(self.low), pick(self.high), pick(self.scale), pick(self.offset), tuple(bands))

    def span(self, bands: int) -> np.ndarray:
        """The physical width of the range per band: the data range of PSNR, in physical units."""
        return np.broadcast_to(self.high - self.low, bands).astype(np.float64)

    def to_physical(self, values: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` network values -> physical values (float64), exactly inverting the range map."""
        bands = values.shape[0]
        low = np.broadcast_to(self.low, bands)[:, None, None]
        return values.astype(np.float64) * self.span(bands)[:, None, None] + low

    def describe(self) -> str:
        """One line for logs and warnings."""
        how = 'scale/offset from each file' if self.from_metadata else \
            f'scale {fmt(self.scale)}, offset {fmt(self.offset)}'
        bands = f'bands {",".join(map(str, self.bands))}; ' if self.bands else ''
        return f'{bands}{how}; physical {fmt(self.low)}..{fmt(self.high)} -> 0..1'


def fmt(values: np.ndarray) -> str:
    return ','.join(f'{value:g}' for value in np.atleast_1d(values))


def parse_calibration(scale: object, offset: object, bands: int | None) -> tuple[np.ndarray, np.ndarray]:
    """raw -> physical ``scale`` and ``offset``: finite, one for every band or one per band, no zero scale."""
    scale, offset = per_band(scale, bands, 'scale'), per_band(offset, bands, 'offset')
    if np.any(scale == 0):
        raise SegSRError(f'radiometry.scale: {fmt(scale)} has a zero; every band needs a non-zero scale')
    return scale, offset


def parse_range(value: object, bands: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``[low, high]`` for every band, or ``[[low, high], ...]`` one pair per band; low < high."""
    pairs = np.asarray(value, dtype=np.float64) if isinstance(value, list | tuple) else None
    if pairs is not None and pairs.ndim == 1 and pairs.size == 2:
        pairs = pairs[None]
    if pairs is None or pairs.ndim != 2 or pairs.shape[1] != 2 or (bands and pairs.shape[0] not in (1, bands)) \
            or not np.all(np.isfinite(pairs)):
        raise SegSRError(f'radiometry.range: expected [low, high] or one [low, high] per band, got {value!r}')
    if np.any(pairs[:, 0] >= pairs[:, 1]):
        raise SegSRError(f'radiometry.range: {value!r} needs low < high in every pair')
    return pairs[:, 0], pairs[:, 1]


DEFAULT_RADIOMETRY = Radiometry(np.zeros(1), np.full(1, 255.0), np.ones(1), np.zeros(1))


def first_tag(tags: dict, names: Sequence[str]) -> float | None:
    for name in names:
        if name in tags:
            try:
                return float(tags[name])
            except ValueError:
                raise SegSRError(f'metadata tag {name}={tags[name]!r} is not a number') from None
    return None


def calibration_from_metadata(dataset, bands: Sequence[int]) -> BandCalibration | None:
    """raw -> physical of 0-based ``bands`` of an open rasterio dataset, or None when it says nothing.

    GDAL's band scale/offset win; else the Sentinel-2 L2A tags (band or dataset level) give
    reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE. A float raster without either holds
    physical values already (scale 1, offset 0); an integer one without either is not calibrated.
    """
    scales = np.array([dataset.scales[band] for band in bands], dtype=np.float64)
    offsets = np.array([dataset.offsets[band] for band in bands], dtype=np.float64)
    if np.any(scales != 1) or np.any(offsets != 0):
        return BandCalibration(scales, offsets)
    dataset_tags = dataset.tags()
    quantification = first_tag(dataset_tags, QUANTIFICATION_TAGS)
    add_offsets = []
    for band in bands:
        band_tags = dataset.tags(band + 1)
        add_offsets.append(first_tag({**dataset_tags, **band_tags}, (ADD_OFFSET_TAG,)))
        band_quantification = first_tag(band_tags, QUANTIFICATION_TAGS)
        quantification = quantification if band_quantification is None else band_quantification
    if quantification is not None:
        return BandCalibration(np.full(len(bands), 1 / quantification),
                               np.array([(add or 0.0) / quantification for add in add_offsets]))
    if np.dtype(dataset.dtypes[0]).kind == 'f':
        return BandCalibration(scales, offsets)
    return None
