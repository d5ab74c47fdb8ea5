"""A Sentinel-2 product, a ``.SAFE`` folder or its ``.zip``: its band files found by name, and its metadata.

Nothing is extracted: the files of a zip are read where they are through GDAL's ``/vsizip/`` paths.
"""

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from segsr.radiometry.contract import BandCalibration, Radiometry
from segsr.sentinel2.metadata import BAND_IDS, ProductMetadata, parse_metadata
from segsr.utils.errors import SegSRError

SAFE_SUFFIX = '.SAFE'
ZIP_SUFFIX = '.zip'
METADATA_FILES = {'MTD_MSIL1C.xml': 'L1C', 'MTD_MSIL2A.xml': 'L2A'}
QA_LAYERS = ('SCL',)
"""Categorical layers of an L2A product: carried by nearest neighbour, never through a network."""
MAX_METADATA_BYTES = 64 * 2**20
# L1C: GRANULE/<g>/IMG_DATA/T33UUP_20230601T100031_B04.jp2; L2A: .../IMG_DATA/R10m/T33UUP_..._B04_10m.jp2
BAND_FILE = re.compile(r'^GRANULE/[^/]+/IMG_DATA/(?:R(?P<folder>\d+)m/)?T\w+?_(?P<band>B\d[0-9A]|SCL|AOT|WVP|TCI)'
                       r'(?:_(?P<res>\d+)m)?\.(?:jp2|tif)$')
NATIVE_RESOLUTION = {'B01': 60, 'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20, 'B07': 20, 'B08': 10,
                     'B8A': 20, 'B09': 60, 'B10': 60, 'B11': 20, 'B12': 20, 'SCL': 20}


def canonical_band(text: str) -> str:
    """``B4`` -> ``B04``, ``b8a`` -> ``B8A``; other text upper-cased as it is."""
    part = text.strip().upper()
    match = re.fullmatch(r'B(\d{1,2}|8A)', part)
    return f'B{int(match[1]):02d}' if match and match[1] != '8A' else part


def is_band_name(text: object) -> bool:
    return isinstance(text, str) and canonical_band(text) in BAND_IDS


def band_names(text: str) -> tuple[str, ...]:
    """``'B04,B03,B02,B08'`` -> names; ``B4`` is read as ``B04``, case does not matter."""
    names = []
    for part in text.split(','):
        name = canonical_band(part)
        if name not in BAND_IDS and name not in QA_LAYERS:
            raise SegSRError(f'{part.strip().upper()!r} is not a Sentinel-2 band: use names among '
                             f'{",".join(BAND_IDS)}')
        names.append(name)
    return tuple(names)


def is_product(path: Path | str) -> bool:
    """A ``.SAFE`` folder or a ``.SAFE.zip`` / ``.zip`` named like a product (S2A_MSIL2A_...)."""
    path = Path(path)
    if path.name.upper().endswith(SAFE_SUFFIX) and path.is_dir():
        return True
    return path.suffix.lower() == ZIP_SUFFIX and path.name.startswith('S2') and path.is_file()


def product_stem(path: Path | str) -> str:
    """The product name without ``.zip`` and ``.SAFE``: the output's name."""
    name = Path(path).name
    for suffix in (ZIP_SUFFIX, SAFE_SUFFIX):
        if name.lower().endswith(suffix.lower()):
            name = name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class BandFile:
    """One band file of a product: a GDAL path and its resolution in metres."""

    band: str
    path: str
    resolution: int


class Product:
    """A product opened for reading: ``bands[name]`` lists the band's files (L2A has several resolutions)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.name = product_stem(self.path)
        entries, read, prefix = self._listing()
        found = [name for name in entries if PurePosixPath(name).name in METADATA_FILES and name.count('/') == 0]
        if not found:
            raise SegSRError(f'{self.path} holds no MTD_MSIL1C.xml or MTD_MSIL2A.xml at its top: '
                             'pass a Sentinel-2 L1C or L2A product (.SAFE folder or its zip)')
        self.level = METADATA_FILES[found[0]]
        self.metadata: ProductMetadata = parse_metadata(read(found[0]), self.level, self.name)
        self.bands: dict[str, list[BandFile]] = {}
        for entry in entries:
            match = BAND_FILE.match(entry)
            if match:
                resolution = int(match['res'] or match['folder'] or NATIVE_RESOLUTION.get(match['band'], 0))
                self.bands.setdefault(match['band'], []).append(BandFile(match['band'], prefix + entry, resolution))
        for files in self.bands.values():
            files.sort(key=lambda file: file.resolution)

    def _listing(self) -> tuple[list[str], callable, str]:
        """Names relative to the product's top folder, a reader of one of them, and the GDAL prefix of a name."""
        if self.path.is_dir():
            root = self.path
            names = [path.relative_to(root).as_posix() for path in root.rglob('*') if path.is_file()]
            return names, lambda name: read_limited(root / name, self.name), f'{root.resolve()}/'
        try:
            archive = zipfile.ZipFile(self.path)
            members = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise SegSRError(f'{self.path} is not a readable zip ({error}): the download is truncated or damaged; '
                             'download the product again') from None
        tops = {name.split('/', 1)[0] for name in members}
        top = next((name for name in tops if name.upper().endswith(SAFE_SUFFIX)), None)
        inner = f'{top}/' if top else ''
        names = [name[len(inner):] for name in members if name.startswith(inner) and not name.endswith('/')]

        def read(name: str) -> bytes:
            info = archive.getinfo(inner + name)
            if info.file_size > MAX_METADATA_BYTES:
                raise SegSRError(f'{self.name}: {name} is {info.file_size} bytes, too large for a metadata file')
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise SegSRError(f'{self.path}: {name} cannot be read from the zip ({error}); '
                                 'download the product again') from None

        return names, read, f'/vsizip/{self.path.resolve()}/{inner}'

    def band_file(self, band: str, resolution: int | None = None) -> BandFile:
        """The band's file at ``resolution`` (metres), else at its finest; a one-line error when it is missing."""
        files = self.bands.get(band, [])
        if not files:
            have = ','.join(sorted(self.bands)) or 'none'
            raise SegSRError(f'{self.name} has no band {band} (bands found: {have}): pick bands the product holds '
                             'with --bands, or download the product again if it should')
        if resolution is not None:
            for file in files:
                if file.resolution == resolution:
                    return file
        return files[0]

    def calibration(self, bands: list[str]) -> BandCalibration:
        """raw -> reflectance of ``bands``: reflectance = (DN + offset) / quantification."""
        quantification = self.metadata.quantification
        offsets = np.array([self.metadata.offset(band) for band in bands], dtype=np.float64)
        return BandCalibration(np.full(len(bands), 1 / quantification), offsets / quantification)

    def contract(self, bands: list[str], low: float = 0.0, high: float = 1.0) -> Radiometry:
        """A fixed contract for ``bands`` of this product: its calibration, reflectance ``low..high`` -> 0..1."""
        calibration = self.calibration(bands)
        section = {'scale': calibration.scale.tolist(), 'offset': calibration.offset.tolist(), 'range': [low, high]}
        return Radiometry.from_options(section, list(range(1, len(bands) + 1)))

    def tags(self) -> dict[str, str]:
        """The product's identifiers and calibration, for the tags of what is made from it."""
        metadata = self.metadata
        offsets = ','.join(f'{band}:{value:g}' for band, value in sorted(metadata.offsets.items()))
        return {**{f'S2_{key}': value for key, value in metadata.identifiers.items()},
                'S2_PRODUCT': self.name, 'S2_LEVEL': self.level, 'S2_PROCESSING_BASELINE': metadata.baseline,
                'S2_QUANTIFICATION_VALUE': f'{metadata.quantification:g}', 'S2_ADD_OFFSET': offsets or 'none'}


def read_limited(path: Path, product: str) -> bytes:
    size = path.stat().st_size
    if size > MAX_METADATA_BYTES:
        raise SegSRError(f'{product}: {path.name} is {size} bytes, too large for a metadata file')
    return path.read_bytes()
