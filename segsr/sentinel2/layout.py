"""Writing Sentinel-2 products in the layout of real ones: the ``.SAFE`` folder, its metadata file and band files.

The demo products and the tests' products are written here, so what segsr's reader is trained and tested on is
laid out exactly like a product from ESA's archive: L1C and L2A, processing baselines before and after 04.00
(from which DNs carry an offset of -1000), band files as lossless JPEG 2000 under their real names and folders.
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

TILE = 'T33UUP'
SENSING = '20230601T100031'
BAND_IDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B10', 'B11', 'B12')
RESOLUTION = {'B01': 60, 'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20, 'B07': 20, 'B08': 10,
              'B8A': 20, 'B09': 60, 'B10': 60, 'B11': 20, 'B12': 20}
L2A_FOLDERS = {10: ('B02', 'B03', 'B04', 'B08'),
               20: ('B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B11', 'B12', 'SCL'),
               60: ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B09', 'B11', 'B12', 'SCL')}
QUANTIFICATION = 10000
ORIGIN = (300000.0, 5800020.0)


def baseline_offset(baseline: str) -> int:
    """The DN offset of a processing baseline: -1000 from 04.00 on, else none."""
    return -1000 if tuple(int(part) for part in baseline.split('.')) >= (4, 0) else 0


def product_name(level: str, baseline: str, seed: int = 0) -> str:
    number = baseline.replace('.', '')
    return f'S2B_MSI{level}_{SENSING}_N{number}_R122_{TILE}_2023060{1 + seed}T120000'


def write_band(path: Path, values: np.ndarray, resolution: int) -> None:
    """One band file: a lossless JPEG 2000 on the tile's UTM grid at ``resolution`` metres."""
    path.parent.mkdir(parents=True, exist_ok=True)
    transform = Affine.translation(*ORIGIN) @ Affine.scale(resolution, -resolution)
    profile = {'driver': 'JP2OpenJPEG', 'width': values.shape[1], 'height': values.shape[0], 'count': 1,
               'dtype': values.dtype.name, 'crs': 'EPSG:32633', 'transform': transform,
               'QUALITY': 100, 'REVERSIBLE': 'YES'}
    with rasterio.open(path, 'w', **profile) as dataset:
        dataset.write(values[None])


def to_digital_numbers(reflectance: np.ndarray, baseline: str) -> np.ndarray:
    """DN = reflectance * quantification - offset, as the processor writes them."""
    return np.rint(reflectance * QUANTIFICATION - baseline_offset(baseline)).astype(np.uint16)


def metadata_xml(level: str, baseline: str, name: str, quantification: bool = True) -> str:
    """The product's ``MTD_MSI*.xml`` with what the reader uses: quantification value, offsets, special values."""
    offset = baseline_offset(baseline)
    l2a = level == 'L2A'
    tag = 'BOA_QUANTIFICATION_VALUE' if l2a else 'QUANTIFICATION_VALUE'
    value = f'<{tag} unit="none">{QUANTIFICATION}</{tag}>' if quantification else ''
    if l2a:
        value = f'<QUANTIFICATION_VALUES_LIST>{value}<AOT_QUANTIFICATION_VALUE unit="none">1000.0' \
                '</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
    offsets = ''
    if offset:
        add = 'BOA_ADD_OFFSET' if l2a else 'RADIO_ADD_OFFSET'
        items = ''.join(f'<{add} band_id="{i}">{offset}</{add}>' for i in range(len(BAND_IDS)))
        offsets = f'<{add}_VALUES_LIST>{items}</{add}_VALUES_LIST>' if l2a else \
            f'<Radiometric_Offset_List>{items}</Radiometric_Offset_List>'
    root = 'Level-2A_User_Product' if l2a else 'Level-1C_User_Product'
    space = f'https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_{root.split("_")[0]}.xsd'
    special = ''.join(f'<Special_Values><SPECIAL_VALUE_TEXT>{text}</SPECIAL_VALUE_TEXT>'
                      f'<SPECIAL_VALUE_INDEX>{index}</SPECIAL_VALUE_INDEX></Special_Values>'
                      for text, index in (('NODATA', 0), ('SATURATED', 65535)))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<n1:{root} xmlns:n1="{space}">'
            f'<n1:General_Info><Product_Info><PRODUCT_START_TIME>2023-06-01T10:00:31.024Z</PRODUCT_START_TIME>'
            f'<PRODUCT_URI>{name}.SAFE</PRODUCT_URI><PROCESSING_LEVEL>Level-{level[1:]}</PROCESSING_LEVEL>'
            f'<PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>'
            '<SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME></Product_Info><Product_Image_Characteristics>'
            f'{special}{value}{offsets}</Product_Image_Characteristics></n1:General_Info></n1:{root}>')


def write_product(folder: Path, bands: dict[str, np.ndarray], level: str = 'L2A', baseline: str = '05.09',
                  seed: int = 0, quantification: bool = True) -> Path:
    """A ``.SAFE`` folder in ``folder`` holding ``bands`` (name -> values at every resolution the product has the
    band in, as ``{resolution: array}``; reflectance, or class numbers for ``SCL``)."""
    name = product_name(level, baseline, seed)
    root = folder / f'{name}.SAFE'
    granule = root / 'GRANULE' / f'{level}_{TILE}_A031234_{SENSING}' / 'IMG_DATA'
    root.mkdir(parents=True)
    (root / f'MTD_MSI{level}.xml').write_text(metadata_xml(level, baseline, name, quantification))
    (root / 'manifest.safe').write_text('<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>')
    for band, by_resolution in bands.items():
        for resolution, values in by_resolution.items():
            stored = values if band == 'SCL' else to_digital_numbers(values, baseline)
            if level == 'L1C':
                write_band(granule / f'{TILE}_{SENSING}_{band}.jp2', stored, resolution)
            else:
                write_band(granule / f'R{resolution}m' / f'{TILE}_{SENSING}_{band}_{resolution}m.jp2', stored,
                           resolution)
    return root
