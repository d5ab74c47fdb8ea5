"""The product metadata file (MTD_MSIL1C.xml / MTD_MSIL2A.xml): quantification, offsets, baseline, identifiers.

Read with defusedxml, so a product from anywhere cannot expand entities or reach the network while parsed.
"""

from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from segsr.utils.errors import SegSRError

BAND_IDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B10', 'B11', 'B12')
"""The band_id attribute of the metadata file is the position of the band in this list."""
OFFSET_BASELINE = (4, 0)
"""From processing baseline 04.00 (January 2022) DNs carry an additive offset (-1000) before quantification."""
QUANTIFICATION = {'L1C': 'QUANTIFICATION_VALUE', 'L2A': 'BOA_QUANTIFICATION_VALUE'}
ADD_OFFSET = {'L1C': 'RADIO_ADD_OFFSET', 'L2A': 'BOA_ADD_OFFSET'}
IDENTIFIERS = ('PRODUCT_URI', 'PRODUCT_TYPE', 'PROCESSING_LEVEL', 'PROCESSING_BASELINE', 'SPACECRAFT_NAME',
               'PRODUCT_START_TIME', 'GENERATION_TIME')


@dataclass(frozen=True)
class ProductMetadata:
    """What the metadata file says: reflectance = (DN + offset[band]) / quantification."""

    level: str
    baseline: str
    quantification: float
    offsets: dict[str, float]
    nodata: float | None
    identifiers: dict[str, str] = field(default_factory=dict)

    @property
    def baseline_tuple(self) -> tuple[int, int]:
        major, _, minor = self.baseline.partition('.')
        return int(major), int(minor or 0)

    def offset(self, band: str) -> float:
        return self.offsets.get(band, 0.0)


def local(tag: str) -> str:
    return tag.rsplit('}', 1)[-1]


def parse_metadata(text: bytes, level: str, name: str) -> ProductMetadata:
    """The metadata of a product of ``level`` ('L1C' or 'L2A'); ``name`` (the product) is for messages."""
    try:
        root = SafeTree.fromstring(text)
    except (SafeTree.ParseError, DefusedXmlException) as error:
        raise SegSRError(f'{name}: its metadata file is not readable XML ({error}); '
                         'download the product again') from None
    texts: dict[str, list] = {}
    for element in root.iter():
        texts.setdefault(local(element.tag), []).append(element)
    quantification = number(texts, QUANTIFICATION[level], name)
    baseline = (first_text(texts, 'PROCESSING_BASELINE') or '').strip()
    if not baseline:
        raise SegSRError(f'{name}: the metadata file has no PROCESSING_BASELINE; download the product again')
    offsets = {}
    for element in texts.get(ADD_OFFSET[level], []):
        band_id = int(element.get('band_id', '-1'))
        if not 0 <= band_id < len(BAND_IDS):
            raise SegSRError(f'{name}: {ADD_OFFSET[level]} has band_id {band_id}, not 0..12; the metadata is damaged')
        offsets[BAND_IDS[band_id]] = parse_number(element.text, ADD_OFFSET[level], name)
    metadata = ProductMetadata(level, baseline, quantification, offsets, special_value(texts, 'NODATA', name),
                               {key: value.strip() for key in IDENTIFIERS if (value := first_text(texts, key))})
    if metadata.baseline_tuple >= OFFSET_BASELINE and not offsets:
        raise SegSRError(f'{name}: baseline {baseline} products carry {ADD_OFFSET[level]} per band, this metadata '
                         'file has none; download the product again')
    return metadata


def first_text(texts: dict, key: str) -> str | None:
    found = texts.get(key)
    return found[0].text if found else None


def number(texts: dict, key: str, name: str) -> float:
    value = first_text(texts, key)
    if value is None:
        raise SegSRError(f'{name}: the metadata file has no {key}, so DNs cannot become reflectance; '
                         'download the product again or pass a raster with a fixed radiometry contract')
    quantification = parse_number(value, key, name)
    if quantification <= 0:
        raise SegSRError(f'{name}: {key} is {value!r}, not a positive number; the metadata is damaged')
    return quantification


def parse_number(text: str | None, key: str, name: str) -> float:
    try:
        return float((text or '').strip())
    except ValueError:
        raise SegSRError(f'{name}: {key} is {text!r}, not a number; the metadata is damaged') from None


def special_value(texts: dict, meaning: str, name: str) -> float | None:
    """The DN the product reserves for ``meaning`` (NODATA, SATURATED), if it declares one."""
    for element in texts.get('Special_Values', []):
        children = {local(child.tag): child.text for child in element}
        if (children.get('SPECIAL_VALUE_TEXT') or '').strip() == meaning:
            return parse_number(children.get('SPECIAL_VALUE_INDEX'), f'{meaning} special value', name)
    return None
