"""The model card: what a weights file was trained for and how well it did, as a plain dict stored inside it.

A colleague who receives the file alone learns from it the architecture, scale, input and output bands, the
radiometric contract, the degradation, the training data (with the hashes of its split files), the validation
metrics with their protocol, and the segsr version and commit that made it.
"""

import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from torch import nn

from segsr.nn.info import DescribedNetwork
from segsr.options.degradation import degradation_names, realesrgan_settings
from segsr.radiometry.contract import Radiometry
from segsr.weights.download import file_sha256

CARD_VERSION = 1
IN_CHANNEL_KEYS = ('num_in_ch', 'in_chans', 'in_channels', 'n_colors')
OUT_CHANNEL_KEYS = ('num_out_ch', 'out_chans', 'out_channels')
RGB_NAMES = ('red', 'green', 'blue')
RASTER_SUFFIXES = ('.tif', '.tiff', '.vrt', '.jp2')


def channel_count(network_opt: dict, keys: tuple[str, ...], default: int | None) -> int | None:
    return next((int(network_opt[key]) for key in keys if key in network_opt), default)


def band_names(contract: Radiometry, count: int | None, named: list[str] | None = None) -> list[str]:
    """The training rasters' own band names (``named``, one per band), else source band numbers of a
    multispectral contract, else red/green/blue for an 8-bit RGB network."""
    if named and len(named) == count:
        return list(named)
    if contract.bands:
        return [f'band_{band}' for band in contract.bands]
    if count == len(RGB_NAMES):
        return list(RGB_NAMES)
    return [f'band_{band}' for band in range(1, (count or 0) + 1)]


def file_digest(path: str | Path) -> str | None:
    try:
        return file_sha256(Path(path))
    except OSError:
        return None


def count_samples(dataset_opt: dict) -> int | None:
    """Lines of the split file, else the files of the ground-truth folder; None where neither is readable."""
    meta = dataset_opt.get('meta_info_file')
    try:
        if meta:
            return sum(1 for line in Path(meta).read_text().splitlines() if line.strip())
        root = Path(dataset_opt['dataroot_gt'])
        return sum(1 for path in root.rglob('*') if path.is_file() and not path.name.startswith('.'))
    except (KeyError, OSError, TypeError):
        return None


@dataclass(frozen=True)
class RasterHeader:
    """What the card reads of the first raster under ``dataroot_gt``: every raster of a contract shares its
    units, and the band names of a training set are those of its files."""

    dtype: str
    descriptions: tuple[str, ...]


def first_raster_header(dataset_opt: dict) -> RasterHeader | None:
    root = dataset_opt.get('dataroot_gt')
    if not root or not Path(root).is_dir():
        return None
    first = next((path for path in sorted(Path(root).rglob('*')) if path.suffix.lower() in RASTER_SUFFIXES), None)
    if first is None:
        return None
    import rasterio

    with rasterio.open(first) as raster:
        return RasterHeader(str(raster.dtypes[0]), tuple(description or '' for description in raster.descriptions))


def raster_band_names(dataset_opt: dict, header: RasterHeader | None,
                      bands: tuple[int, ...] | None) -> list[str] | None:
    """What the training data calls the bands the network takes (``bands``: 1-based, None for all): the
    Sentinel-2 bands a product dataset stacks (``product_bands``), else the band descriptions of its first
    raster (B04, B8A... in the Wald pairs); None unless every band has a name of its own, so that a card never
    names two bands alike."""
    stacked = dataset_opt.get('product_bands')
    if stacked:
        names = [str(name).upper() for name in stacked]
    elif header is not None:
        names = list(header.descriptions)
    else:
        return None
    try:
        picked = [names[band - 1] for band in bands] if bands else names
    except IndexError:
        return None
    return picked if all(picked) and len(set(picked)) == len(picked) else None


def describe_dataset(dataset_opt: dict) -> dict:
    meta = dataset_opt.get('meta_info_file')
    return {
        'name': dataset_opt.get('name'), 'type': dataset_opt.get('type'),
        'meta_info_file': {'path': str(meta), 'sha256': file_digest(meta)} if meta else None,
        'count': count_samples(dataset_opt),
    }


def degradation_step(name: str, dataset_opt: dict, opt: dict) -> dict:
    if name == 'realesrgan':
        return {'type': name, **realesrgan_settings(opt, dataset_opt)}
    if name == 'sensor':
        return {'type': name, **(dataset_opt.get('sensor') or {})}
    return {'type': name}


def degradation_of(dataset_opt: dict, opt: dict) -> dict:
    """How the training LR was made: the degradation the dataset names (RealESRGANDataset implies Real-ESRGAN's)
    with every setting it used, a chain as its ``steps``; LR files given beside HR; else MATLAB-style bicubic."""
    scale = opt.get('scale')
    names = degradation_names(dataset_opt)
    if names == ['bicubic']:
        if dataset_opt.get('dataroot_lq'):
            return {'type': 'paired', 'dataroot_lq': str(dataset_opt['dataroot_lq']), 'scale': scale}
        return {'type': 'bicubic', 'scale': scale}
    steps = [degradation_step(name, dataset_opt, opt) for name in names]
    if len(steps) == 1:
        return {**steps[0], 'scale': scale}
    return {'type': 'chain', 'scale': scale, 'steps': steps}


def validation_protocol(val_opt: dict) -> dict:
    metrics = val_opt.get('metrics') or {}
    return {
        'metrics': {name: {'type': metric.get('type'), 'crop_border': metric.get('crop_border', 0),
                           'test_y_channel': bool(metric.get('test_y_channel', False)),
                           **({'bands': list(metric['bands'])} if metric.get('bands') else {})}
                    for name, metric in metrics.items()},
        'self_ensemble': bool(val_opt.get('self_ensemble', False)),
        'enforce_consistency': bool(val_opt.get('enforce_consistency', False)),
    }


def validation_results(best: dict | None, last: dict | None, last_dataset: str | None) -> dict:
    """Per validation dataset and metric: the best value and its iteration, and the last value measured."""
    results = {}
    for dataset, metrics in (best or {}).items():
        results[dataset] = {
            metric: {'best': float(record['val']), 'best_iter': int(record['iter']),
                     'last': plain_number((last or {}).get(metric)) if dataset == last_dataset else None}
            for metric, record in metrics.items() if record['iter'] != -1
        }
    return results


def plain_number(value: object) -> float | None:
    """A float a weights-only reader and JSON both take (numpy scalars are neither)."""
    return None if value is None else float(value)


def installed_version() -> str | None:
    """segsr's version as installed (``pip install -e .``); None when run from a source tree never installed."""
    try:
        return metadata.version('segsr')
    except metadata.PackageNotFoundError:
        return None


def source_commit() -> str | None:
    """The git commit of segsr's source tree, or None outside a git checkout."""
    try:
        found = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=Path(__file__).parent, capture_output=True,
                               text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def build_card(opt: dict, network: nn.Module, validation: dict | None = None) -> dict:
    """The card of the network ``opt`` trains, with ``validation`` results (:func:`validation_results`)."""
    network_opt = opt.get('network_g') or {}
    contract = Radiometry.of_options(opt)
    if isinstance(network, DescribedNetwork):  # never measured here: a forward pass would touch training state
        in_count, out_count = network.network_info.in_chans, network.network_info.out_chans
    else:
        in_count = channel_count(network_opt, IN_CHANNEL_KEYS, len(contract.bands) if contract.bands else None)
        out_count = channel_count(network_opt, OUT_CHANNEL_KEYS, in_count)
    datasets = opt.get('datasets') or {}
    train = [dataset for phase, dataset in datasets.items() if phase.startswith('train')]
    default_images = contract.is_default and not contract.bands
    dtype, named = 'uint8', None
    if not default_images:
        headers = [first_raster_header(dataset) for dataset in train]
        dtype = next((header.dtype for header in headers if header), None)
        named = next(filter(None, (raster_band_names(dataset, header, contract.bands)
                                   for dataset, header in zip(train, headers, strict=True))), None)
    scale = opt.get('scale')
    return {
        'card_version': CARD_VERSION,
        'name': opt.get('name'),
        'architecture': {'type': network_opt.get('type'),
                         'parameters': sum(parameter.numel() for parameter in network.parameters()),
                         'network_g': network_opt},
        'scale': scale,
        'input': {'count': in_count, 'bands': band_names(contract, in_count, named), 'dtype': dtype,
                  'order': 'network channel order'},
        'output': {'count': out_count, 'bands': band_names(contract, out_count, named), 'dtype': dtype},
        'radiometry': contract.to_dict(),
        'degradation': [degradation_of(dataset, opt) for dataset in train],
        'training_data': [describe_dataset(dataset) for dataset in train],
        'validation_data': [describe_dataset(dataset) for phase, dataset in datasets.items()
                            if not phase.startswith('train')],
        'validation': {'protocol': validation_protocol(opt.get('val') or {}), 'results': validation or {}},
        'segsr': {'version': installed_version(), 'commit': source_commit()},
        'license': ((opt.get('logger') or {}).get('card') or {}).get('license'),
    }
