"""Tiny Sentinel-2 products laid out like real ones: L1C and L2A .SAFE folders and their zips, never downloaded.

Band files are lossless JPEG 2000 (GDAL's JP2OpenJPEG) under the names and folders of real products; the
metadata file carries the quantification value and, from baseline 04.00, the per-band offset of -1000.
"""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

TILE = 'T33UUP'
SENSING = '20230601T100031'
SIDE = 48
"""Pixels a side at 10 m; 24 at 20 m, 8 at 60 m."""
ORIGIN = (300000.0, 5800020.0)
BAND_IDS = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B08', 'B8A', 'B09', 'B10', 'B11', 'B12')
RESOLUTION = {'B01': 60, 'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20, 'B07': 20, 'B08': 10,
              'B8A': 20, 'B09': 60, 'B10': 60, 'B11': 20, 'B12': 20}
L2A_FOLDERS = {10: ('B02', 'B03', 'B04', 'B08'),
               20: ('B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B11', 'B12', 'SCL'),
               60: ('B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07', 'B8A', 'B09', 'B11', 'B12', 'SCL')}
QUANTIFICATION = 10000


def reflectance(band: str, resolution: int, seed: int = 0) -> np.ndarray:
    """A smooth reflectance field (0.02..0.6) of one band at ``resolution``, the same ground for every resolution."""
    side = SIDE * 10 // resolution
    y, x = (np.mgrid[0:side, 0:side] + 0.5) * resolution / 10
    phase = BAND_IDS.index(band) if band in BAND_IDS else 0
    return 0.3 + 0.2 * np.sin(x / 7 + phase + seed) * np.cos(y / 9 - phase) + 0.05 * (x / SIDE)


def scl_classes(resolution: int = 20) -> np.ndarray:
    """Scene classes in blocks: vegetation, water, cloud (9), cloud shadow (3), ..., every 4 pixels at 20 m."""
    side = SIDE * 10 // resolution
    y, x = np.mgrid[0:side, 0:side] * resolution // 20
    return np.array([4, 6, 9, 3, 5, 8, 10, 11], np.uint8)[(y // 4 + x // 4) % 8]


def write_band(path: Path, values: np.ndarray, resolution: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    transform = Affine.translation(*ORIGIN) @ Affine.scale(resolution, -resolution)
    profile = {'driver': 'JP2OpenJPEG', 'width': values.shape[1], 'height': values.shape[0], 'count': 1,
               'dtype': values.dtype.name, 'crs': 'EPSG:32633', 'transform': transform,
               'QUALITY': 100, 'REVERSIBLE': 'YES'}
    with rasterio.open(path, 'w', **profile) as dataset:
        dataset.write(values[None])


def digital_numbers(band: str, resolution: int, offset: int, seed: int) -> np.ndarray:
    """DN = reflectance * quantification - offset, as the processor writes them."""
    return np.rint(reflectance(band, resolution, seed) * QUANTIFICATION - offset).astype(np.uint16)


def metadata_xml(level: str, baseline: str, offset: int, name: str, quantification: bool = True) -> str:
    l2a = level == 'L2A'
    tag = 'BOA_QUANTIFICATION_VALUE' if l2a else 'QUANTIFICATION_VALUE'
    value = f'<{tag} unit="none">{QUANTIFICATION}</{tag}>' if quantification else ''
    if l2a:
        value = f'<QUANTIFICATION_VALUES_LIST>{value}<AOT_QUANTIFICATION_VALUE unit="none">1000.0' \
                '</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
    offsets = ''
    if tuple(int(p) for p in baseline.split('.')) >= (4, 0):
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


def product_name(level: str, baseline: str, seed: int = 0) -> str:
    number = baseline.replace('.', '')
    return f'S2B_MSI{level}_{SENSING}_N{number}_R122_{TILE}_2023060{1 + seed}T120000'


def make_product(folder: Path, level: str = 'L2A', baseline: str = '05.09', seed: int = 0,
                 quantification: bool = True, omit: tuple[str, ...] = ()) -> Path:
    """A ``.SAFE`` folder in ``folder``; ``omit`` leaves band files out (every resolution of them)."""
    name = product_name(level, baseline, seed)
    root = folder / f'{name}.SAFE'
    offset = -1000 if tuple(int(p) for p in baseline.split('.')) >= (4, 0) else 0
    granule = root / 'GRANULE' / f'{level}_{TILE}_A031234_{SENSING}' / 'IMG_DATA'
    root.mkdir(parents=True)
    (root / f'MTD_MSI{level}.xml').write_text(metadata_xml(level, baseline, offset, name, quantification))
    (root / 'manifest.safe').write_text('<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"/>')
    if level == 'L1C':
        for band in BAND_IDS:
            if band not in omit:
                resolution = RESOLUTION[band]
                write_band(granule / f'{TILE}_{SENSING}_{band}.jp2',
                           digital_numbers(band, resolution, offset, seed), resolution)
        return root
    for resolution, bands in L2A_FOLDERS.items():
        for band in bands:
            if band in omit:
                continue
            values = scl_classes(resolution) if band == 'SCL' else digital_numbers(band, resolution, offset, seed)
            write_band(granule / f'R{resolution}m' / f'{TILE}_{SENSING}_{band}_{resolution}m.jp2', values, resolution)
    return root


def zip_product(safe: Path, remove: bool = False) -> Path:
    """``<name>.SAFE.zip`` beside the folder, holding the folder as its top entry (as the archives deliver it)."""
    target = safe.with_name(f'{safe.name}.zip')
    with zipfile.ZipFile(target, 'w', zipfile.ZIP_STORED) as archive:
        for path in sorted(safe.rglob('*')):
            archive.write(path, path.relative_to(safe.parent).as_posix())
    if remove:
        shutil.rmtree(safe)
    return target
