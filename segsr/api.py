"""The Python API of inference: ``segsr.load`` returns an :class:`Upscaler`; segsr-infer is a thin layer over it.

Arrays, tensors, DataArrays and files all go through the same tiling, value mapping and nodata handling as
the command line, so the same data give the same values whichever way they come in.
"""

import contextlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import Affine

import segsr
from segsr.inference.execution.engine import TileUpscaler, resolve_device
from segsr.inference.execution.onnx_runner import OnnxTileUpscaler
from segsr.inference.execution.scene import GDAL_CACHE_MB, RunReport, run_scene, upscale_input
from segsr.inference.execution.scene_plan import RadiometryOptions, apply_contract, check_contract_fits, plan_scene
from segsr.inference.io.arrays import ArraySource, channels_first, restore_layout
from segsr.inference.io.image_io import ImageSink
from segsr.inference.io.inputs import check_input, collect_inputs
from segsr.inference.planning.budget import announce, check_budget
from segsr.inference.planning.distributed import detect_ranks, rank_device
from segsr.inference.planning.job import run_inputs
from segsr.metrics.consistency import ConsistentNetwork
from segsr.nn.info import describe
from segsr.options.inference import FileOptions, with_card_bands
from segsr.radiometry.contract import Radiometry
from segsr.radiometry.input_gate import check_pixels
from segsr.self_ensemble import with_self_ensemble
from segsr.sentinel2.product import is_product
from segsr.utils.errors import SegSRError
from segsr.utils.optional import import_optional
from segsr.weights.card_formats import stored_card
from segsr.weights.hub import WeightsFile, resolve_weights
from segsr.weights.network import load_network_contract_card

XARRAY_PACKAGES = 'pip install xarray rioxarray (or pip install -e ".[xarray]")'


def check_network_options(onnx: bool, opt=None, bf16: bool = False, device: str | None = None,
                          options: FileOptions | None = None) -> None:
    """Flags that only a torch network can honour, refused with an ONNX graph."""
    if not onnx:
        return
    torch_only = [flag for flag, given in (
        ('--opt', opt), ('--bf16', bf16), ('--save-guidance', options and options.save_guidance),
        ('--uncertainty', options and options.uncertainty),
        ('--enforce-consistency', options and options.enforce_consistency),
        ('--device', device not in (None, 'cpu'))) if given]
    if torch_only:
        raise SegSRError(f'{", ".join(torch_only)} apply to --weights only; drop them with --onnx')


class Upscaler:
    """A loaded network and everything needed to run it on arrays, tensors, DataArrays, files and folders.

    Per-call options are segsr-infer's (``tile``, ``overlap``, ``batch``, ``bands``, ``stretch``,
    ``percentiles``, ``allow_categorical``, ``cog``, ``compress``, ``blocksize``, ``save_guidance``,
    ``uncertainty``, ``enforce_consistency``, ``consistency_report``, ``overwrite``, ``skip_existing``,
    ``io_threads``), named with underscores.

    ``contract`` is the radiometric contract the checkpoint was trained with (None for an ONNX graph or a
    checkpoint without one): every call maps values through it unless ``stretch`` names another map.
    ``origin`` is the reference the file was fetched from (a catalogue name, ``hf://`` or ``https://``) with
    its sha256, written into the outputs' tags. ``card`` is the model card of the weights: an input of another
    band count is refused, one far from the contract warned about.
    """

    def __init__(self, source: Path, network: torch.nn.Module | None, onnx: OnnxTileUpscaler | None,
                 device: torch.device, bf16: bool, self_ensemble: bool = False, contract: Radiometry | None = None,
                 origin: WeightsFile | None = None, card: dict | None = None):
        self.source = source
        self.origin = origin
        self.card = card
        self.network = network
        self.contract = contract
        self.onnx = onnx
        self.device = device
        self.bf16 = bf16
        self.self_ensemble = self_ensemble
        plain = self.runner(FileOptions())
        self.scale = plain.scale
        self.in_channels = plain.in_channels

    def runner(self, options: FileOptions) -> TileUpscaler | OnnxTileUpscaler:
        """What the tiled engine calls: the network, made consistent with its input (``enforce_consistency``),
        averaged over the x8 self-ensemble (loaded with ``self_ensemble``, or with ``uncertainty``, which adds
        the ensemble's spread as extra channels), with the SEGSR maps as extra channels (``save_guidance``)."""
        if self.onnx is not None:
            check_network_options(True, options=options)
            return self.onnx
        network = self.network
        if options.enforce_consistency:
            network = ConsistentNetwork(network, describe(network).scale)
        if self.self_ensemble and not options.uncertainty:  # with uncertainty the upscaler runs the ensemble itself
            network = with_self_ensemble(network)
        return TileUpscaler(network, self.device, bf16=self.bf16, guidance=options.save_guidance,
                            uncertainty=options.uncertainty, card=self.card)

    def radiometry(self, options: FileOptions, warn: bool = True) -> RadiometryOptions:
        """How a call maps values: the options under the checkpoint's contract (:func:`apply_contract`)."""
        return apply_contract(options.radiometry, self.contract, warn)

    def tags(self, options: FileOptions) -> dict:
        """Dataset tags that say what made a file."""
        stretch = options.stretch if options.stretch != 'percentile' else f'percentile {tuple(options.percentiles)}'
        if self.contract is not None and options.stretch == 'auto':
            stretch = f'contract: {self.contract.describe()}'
        fetched = {} if self.origin is None or self.origin.sha256 is None else {
            'SEGSR_WEIGHTS_SOURCE': self.origin.reference, 'SEGSR_WEIGHTS_SHA256': self.origin.sha256}
        return {
            'SEGSR_VERSION': segsr.__version__,
            'SEGSR_WEIGHTS': self.source.name,
            **fetched,
            'SEGSR_SCALE': self.scale,
            'SEGSR_TILE': options.tile,
            'SEGSR_OVERLAP': options.overlap,
            'SEGSR_BANDS': options.bands_text(),
            'SEGSR_STRETCH': stretch,
        }

    def upscale(self, array, *, layout: str = 'auto', nodata: float | None = None, **options):
        """Super-resolve a numpy array (``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``, any dtype) or a torch tensor
        (``(C, H, W)`` or ``(B, C, H, W)``); the result has the input's type, layout and dtype.

        Values are mapped as segsr-infer maps a file of the same values; ``nodata`` marks pixels (where every
        band holds it) that are filled before the network and set back after it.
        """
        if isinstance(array, torch.Tensor):
            values = array.detach().cpu().numpy()
            if array.ndim == 4:
                result = np.stack([self.upscale(image, layout='chw', nodata=nodata, **options) for image in values])
            else:
                result = self.upscale(values, layout='chw' if array.ndim == 3 else layout, nodata=nodata, **options)
            return torch.from_numpy(result).to(array.device)
        options = FileOptions.from_keywords(**options)
        file_only = [name for name in ('save_guidance', 'uncertainty', 'consistency_report') if getattr(options, name)]
        if file_only:
            raise SegSRError(f'{", ".join(file_only)} write files beside an output: use upscale_file or segsr-infer')
        pixels, layout = channels_first(check_pixels(array, 'the array'), layout)
        runner = self.runner(options)
        source = ArraySource(pixels, nodata)
        plan = plan_scene(source, runner, self.radiometry(options), f'an array of shape {np.shape(array)}')
        sink = ImageSink(Path('array'), source.height * self.scale, source.width * self.scale, len(plan.bands),
                         source.dtype)
        with contextlib.ExitStack() as stack:
            run_scene(stack, source, plan, runner, options.tiling, sink)
        return restore_layout(sink.pixels, layout)

    def upscale_dataarray(self, data, **options):
        """An xarray DataArray (``(y, x)`` or ``(band, y, x)``, as rioxarray opens rasters) super-resolved, with
        coordinates at the new pixel size, its CRS, attributes and nodata kept. Needs xarray and rioxarray."""
        xarray = import_optional('xarray', 'upscale_dataarray', XARRAY_PACKAGES)
        import_optional('rioxarray', 'upscale_dataarray', XARRAY_PACKAGES)
        y_dim, x_dim = data.rio.y_dim, data.rio.x_dim
        spatial = (y_dim, x_dim)
        others = [dim for dim in data.dims if dim not in spatial]
        if len(others) > 1:
            raise SegSRError(f'a DataArray with dims {data.dims} has more than one band dimension: select one')
        ordered = data.transpose(*others, *spatial)
        nodata = data.rio.nodata
        values = self.upscale(ordered.values, layout='chw' if others else 'auto', nodata=nodata, **options)
        transform = data.rio.transform() @ Affine.scale(1 / self.scale)
        height, width = values.shape[-2:]
        coords = {dim: ordered.coords[dim] for dim in others if dim in ordered.coords}
        coords[x_dim] = transform.c + (np.arange(width) + 0.5) * transform.a
        coords[y_dim] = transform.f + (np.arange(height) + 0.5) * transform.e
        result = xarray.DataArray(values, dims=ordered.dims, coords=coords, attrs=dict(data.attrs), name=data.name)
        result = result.rio.write_transform(transform)
        if data.rio.crs is not None:
            result = result.rio.write_crs(data.rio.crs)
        if nodata is not None:
            result = result.rio.write_nodata(nodata, encoded='_FillValue' in data.encoding)
        return result.transpose(*data.dims)

    def upscale_file(self, src, dst, **options) -> list[Path]:
        """Super-resolve one file into ``dst`` (a file name, or a folder to write it into under its own name);
        guidance maps, spread raster and consistency report go beside it as ``<stem>_guidance.tif``,
        ``<stem>_uncertainty.tif`` and ``<stem>_consistency.json``. Returns the files written (none when
        ``skip_existing`` found them done)."""
        options = with_card_bands(FileOptions.from_keywords(**options), self.card)
        dst = Path(dst)
        item = options.plan_input(src, dst) if dst.is_dir() else options.outputs_of(src, dst)
        if options.skip_existing and all(path.exists() for path in item.outputs):
            return []
        runner = self.runner(options)
        radiometry = self.radiometry(options)
        check_input(item, radiometry.bands, options.allow_categorical, options.overwrite, set())
        budget = check_budget(item, runner, replace(options, bands=radiometry.bands))
        check_contract_fits(item.source, runner, radiometry)
        announce([(item.source, budget)], runner, options.tiling)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            return upscale_input(item, runner, options.tiling, radiometry, options.tiff_format,
                                 self.tags(options), io_threads=options.io_threads)

    def run(self, input, output, *, recursive: bool = False, shard: str | None = None, rank_timeout: float = 10.0,
            **options) -> RunReport:
        """Every image under ``input`` (a file, folder or glob) into the folder ``output``, as segsr-infer does;
        under torchrun or srun, or with ``shard='i/n'``, this process's share of them."""
        options = with_card_bands(FileOptions.from_keywords(**options), self.card)
        check_network_options(self.onnx is not None, options=options)
        return run_inputs(input, output, options, lambda: (self.runner(options), self.tags(options), self.contract),
                          recursive=recursive, shard=shard, rank_timeout=rank_timeout)


def load(weights_or_onnx, *, opt=None, device: str | None = None, bf16: bool = False,
         self_ensemble: bool = False, catalogue=None) -> Upscaler:
    """An :class:`Upscaler` for a checkpoint (``.safetensors`` or ``.pth``; ``opt`` options YAML for one without
    stored options) or an exported ONNX graph (``.onnx``, run by onnxruntime on the CPU).

    ``weights_or_onnx`` is a path, a name from the model catalogues (the shipped one, ``$SEGSR_CATALOGUE``'s
    and ``catalogue``, a path or a list of them), ``hf://owner/repo/path/file[@revision]`` (needs
    huggingface_hub) or an ``https://`` URL; what is fetched is cached (``$SEGSR_CACHE``, else
    ``~/.cache/segsr``) and checked against the catalogue's sha256 first.

    ``device`` defaults to CUDA when present; ``None`` or ``'cuda'`` means ``cuda:LOCAL_RANK`` for a rank of a
    torchrun or Slurm run.
    """
    weights = resolve_weights(weights_or_onnx, catalogue)
    return _load(weights, weights.path.suffix.lower() == '.onnx', opt, device, bf16, self_ensemble)


def _load(weights: WeightsFile, onnx: bool, opt, device: str | None, bf16: bool, self_ensemble: bool) -> Upscaler:
    check_network_options(onnx, opt, bf16, device)
    path = weights.path
    if onnx:
        return Upscaler(path, None, OnnxTileUpscaler(path, self_ensemble=self_ensemble), torch.device('cpu'),
                        bf16=False, origin=weights)
    if device in (None, 'cuda'):  # a rank of a launched run takes the GPU of its local rank
        device = rank_device(detect_ranks()) or device
    resolved = resolve_device(device)
    network, _, contract, card = load_network_contract_card(path, opt)
    return Upscaler(path, network, None, resolved, bf16, self_ensemble, contract, weights, card)


def run(input, output, *, weights=None, onnx=None, opt=None, device: str | None = None, bf16: bool = False,
        self_ensemble: bool = False, recursive: bool = False, shard: str | None = None, rank_timeout: float = 10.0,
        catalogue=None, **options) -> RunReport:
    """segsr-infer as a function: the inputs are checked before the network is loaded (or fetched, for a
    reference :func:`load` takes), so a mistake in them shows before a large checkpoint is read. Only a
    Sentinel-2 product without ``bands`` has the weights' card read first, for the bands to stack."""
    if (weights is None) == (onnx is None):
        raise SegSRError('give exactly one of weights= (a checkpoint) or onnx= (an exported graph)')
    options = FileOptions.from_keywords(**options)
    check_network_options(onnx is not None, opt, bf16, device, options)
    resolved = None
    if weights is not None and not options.band_names and holds_product(input, output, recursive):
        resolved = resolve_weights(weights, catalogue)
        options = with_card_bands(options, stored_card(resolved.path))

    def load_runner():
        upscaler = _load(resolved or resolve_weights(weights or onnx, catalogue), onnx is not None, opt, device,
                         bf16, self_ensemble)
        return upscaler.runner(options), upscaler.tags(options), upscaler.contract

    return run_inputs(input, output, options, load_runner, recursive=recursive, shard=shard,
                      rank_timeout=rank_timeout)


def holds_product(input, output, recursive: bool) -> bool:
    """Whether the inputs segsr-infer would read hold a Sentinel-2 product (a listing, nothing opened)."""
    try:
        return any(is_product(source) for source, _ in collect_inputs(input, recursive, Path(output)))
    except SegSRError:  # run_inputs reports the inputs' problem in its own words
        return False
