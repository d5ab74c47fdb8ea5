"""Hostile and careless files: nothing in an input runs as code, and no user's file is deleted, replaced or
silently changed. Refusals go through the bad-input harness of test_bad_input.py (exit code, no traceback, key
words in the last line, watched trees unchanged); hostile inputs that must run go through :func:`expect_success`
(no error, watched trees unchanged but for the files that were asked for)."""

import ast
import hashlib
import importlib.util
import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import rs_fakes
import torch
import yaml
from conftest import ROOT, TINY_EDSR, eval_options, write_yaml
from raster_fakes import smooth, toy_checkpoint, write_raster
from rasterio.control import GroundControlPoint
from test_bad_input import Payload, expect_cli_error, expect_one_line_error, tree_digest

from segsr import evaluation
from segsr.data.geotiff import RasterSource
from segsr.degradations.bicubic import make_lr_uint8
from segsr.export import main as export_main
from segsr.infer import main as infer_main
from segsr.inference.execution.scene import RadiometryOptions, TilingOptions, band_georeference, upscale_input
from segsr.inference.io.inputs import plan_input
from segsr.inference.io.manifest import MANIFEST_NAME
from segsr.utils.errors import SegSRError
from segsr.utils.files import OutputExistsError, remove_stale_temp_files, temporary_owner, temporary_path

onnx_missing = importlib.util.find_spec('onnxruntime') is None or importlib.util.find_spec('onnxscript') is None


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path: what changed, not only whether."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob('*')) if path.is_file()}


def expect_success(main, argv: list[str], watched: Path, written: set[str], capsys,
                   removed: frozenset[str] = frozenset()) -> None:
    """Call an entry point in-process: no error, no traceback, and ``watched`` unchanged except for the
    ``written`` files and the ``removed`` ones (temporary files of processes that are gone)."""
    before = file_digests(watched)
    main(argv)
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.out + captured.err and 'error:' not in captured.err, captured.err
    after = file_digests(watched)
    assert written <= set(after), f'{written - set(after)} not written'
    assert {name: digest for name, digest in after.items() if name not in written} == {
        name: digest for name, digest in before.items() if name not in written | removed}


@pytest.fixture(scope='module')
def edsr_weights(tmp_path_factory) -> Path:
    """A tiny x4 EDSR checkpoint with its options, as training writes it."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    network = build_network(dict(TINY_EDSR))
    path = tmp_path_factory.mktemp('weights') / 'edsr_x4.pth'
    torch.save({'params_ema': network.state_dict(), 'network_g': dict(TINY_EDSR)}, path)
    return path


@pytest.fixture(scope='module')
def gray_toy(tmp_path_factory) -> Path:
    return toy_checkpoint(tmp_path_factory.mktemp('toy') / 'toy_gray_x2.pth', channels=1, upscale=2)


@pytest.fixture
def payload(tmp_path) -> tuple[Path, Path]:
    """A torch.save file whose unpickling (by a full unpickler) would create ``marker``."""
    marker = tmp_path / 'unpickled'
    path = tmp_path / 'inputs' / 'payload.pth'
    path.parent.mkdir()
    torch.save({'params': Payload(marker), 'params_ema': Payload(marker), 'network_g': dict(TINY_EDSR)}, path)
    return path, marker


def png(path: Path, size: int = 16, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))
    return path


# --- 1. nothing in an input runs as code ------------------------------------------------------------------------


@pytest.mark.parametrize('metric', ['calculate_lpips', 'calculate_dists'])
def test_payload_as_backbone_weights_of_test_py(demo_data, edsr_weights, tmp_path, payload, capsys, metric):
    path, marker = payload
    options = eval_options(demo_data, 'payload', edsr_weights)
    options['val']['metrics'] = {'perceptual': {'type': metric, 'backbone_weights': str(path), 'better': 'lower'}}
    message = expect_one_line_error(evaluation.main, ['-opt', str(write_yaml(tmp_path / 't.yml', options)), '--root',
                                                      str(tmp_path / 'root')], path.parent,
                                    ('payload.pth cannot be read', 'never runs code'), capsys)
    assert 'weights_only' not in message and not marker.exists()


CHECKPOINT_TOOLS = [
    ('infer', 'infer.py', lambda weights, tmp: ['--weights', str(weights), '--input', str(png(tmp / 'in' / 'a.png')),
                                                '--output', str(tmp / 'out')]),
    ('export', 'export.py', lambda weights, tmp: ['--weights', str(weights), '--output', str(tmp / 'out' / 'm.onnx')]),
    ('test_py', 'test.py', lambda weights, tmp: ['-opt', str(write_yaml(tmp / 't.yml', eval_options(
        tmp / 'data', 'payload', weights))), '--root', str(tmp / 'out')]),
]


@pytest.mark.parametrize('script, arguments', [case[1:] for case in CHECKPOINT_TOOLS],
                         ids=[case[0] for case in CHECKPOINT_TOOLS])
def test_payload_as_checkpoint_of_each_tool(demo_data, tmp_path, payload, script, arguments):
    path, marker = payload
    (tmp_path / 'data').symlink_to(demo_data)
    argv = arguments(path, tmp_path)
    last = expect_cli_error(script, argv, path.parent, ('payload.pth cannot be read', 'never runs code'))
    assert 'weights_only' not in last and not marker.exists()
    assert not [path for path in (tmp_path / 'out').rglob('*') if path.is_file()], 'nothing written'


def test_torchscript_archive_as_inference_weights_is_refused_unrun(tmp_path, capsys):
    """torch would hand a TorchScript archive to torch.jit.load (running its code); segsr refuses it, and its
    message, like every refusal of the loader, gives no advice to load with the full unpickler."""
    archive = tmp_path / 'inputs' / 'scripted.pt'
    archive.parent.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.script(ScriptedTower()).save(str(archive))
    message = expect_one_line_error(infer_main, ['--weights', str(archive), '--input', str(png(tmp_path / 'a.png')),
                                                 '--output', str(tmp_path / 'out')], archive.parent,
                                    ('scripted.pt cannot be read', 'TorchScript archive', 'never runs'), capsys)
    assert 'weights_only' not in message and not (tmp_path / 'out').exists()


def test_torchscript_shaped_payload_as_clip_weights(tmp_path):
    """An archive laid out like TorchScript whose data.pkl is a pickle payload is refused unrun."""
    from segsr.clip.loader import read_checkpoint

    marker = tmp_path / 'unpickled'
    archive = tmp_path / 'ViT-B-16.pt'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('model/data.pkl', pickle.dumps(Payload(marker)))
        zf.writestr('model/constants.pkl', pickle.dumps(()))
    with pytest.raises(SegSRError) as excinfo:
        read_checkpoint(archive)
    assert 'cannot read CLIP checkpoint' in str(excinfo.value) and '\n' not in str(excinfo.value)
    assert not marker.exists()


class ScriptedTower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LayerNorm(4))
        self.register_buffer('positional', torch.arange(6.0).reshape(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual(x)


def test_torchscript_weights_are_read_without_torch_jit(tmp_path):
    from segsr.clip.torchscript_weights import read_torchscript_weights

    torch.manual_seed(0)
    path = tmp_path / 'scripted.pt'
    with warnings.catch_warnings():  # torch.jit.script is deprecated; here it only writes the reference archive
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.script(ScriptedTower()).save(str(path))
    torch.manual_seed(0)
    expected = ScriptedTower().state_dict()
    found = read_torchscript_weights(path)
    assert sorted(found) == sorted(expected)
    assert all(torch.equal(found[key], expected[key]) for key in expected)
# --- nothing in an input runs as code: every loader call in the source is weights-only or safe ---------------


SCANNED = ('segsr', 'scripts')
UNPICKLING = {  # calls that unpickle (or run) whatever a file holds, whatever their arguments
    'pickle.load', 'pickle.loads', 'pickle.Unpickler', '_pickle.load', '_pickle.loads', 'cPickle.load',
    'dill.load', 'dill.loads', 'cloudpickle.load', 'cloudpickle.loads', 'joblib.load', 'pandas.read_pickle',
    'shelve.open', 'marshal.load', 'marshal.loads', 'jsonpickle.decode', 'torch.jit.load',
    'torch.package.PackageImporter',
    'torch.hub.load', 'torch.hub.load_state_dict_from_url', 'torch.utils.model_zoo.load_url',
    'torch.serialization.add_safe_globals', 'torch.serialization.safe_globals', 'yaml.unsafe_load', 'yaml.full_load',
    'yaml.unsafe_load_all', 'yaml.full_load_all', 'eval', 'exec', 'builtins.eval', 'builtins.exec',
}
SAFE_YAML_LOADERS = {'yaml.SafeLoader', 'yaml.CSafeLoader', 'yaml.BaseLoader', 'OptionLoader'}
# Calls into libraries that read files with torch.load inside; each reviewed, with why it is safe.
REVIEWED = {
    ('segsr/clip/loader.py', 'open_clip.factory.load_state_dict'):
        'open_clip passes weights_only=True (checked below) or reads safetensors',
    ('segsr/metrics/perceptual_metric.py', 'torchmetrics.functional.image.dists.DISTSNetwork'):
        'its vgg16 is replaced by the backbone segsr loaded weights-only; it reads only its own package data',
}


def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, aliases)
        return f'{base}.{node.attr}' if base else None
    return None


def import_aliases(tree: ast.Module) -> dict[str, str]:
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                aliases[name.asname or name.name.split('.')[0]] = name.name if name.asname else name.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for name in node.names:
                aliases[name.asname or name.name] = f'{node.module}.{name.name}'
    return aliases


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def is_constant(node: ast.AST | None, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_reason(call: ast.Call, name: str, aliases: dict[str, str]) -> str | None:
    """Why this call could run code from a file, or None when it cannot."""
    if name in UNPICKLING:
        return 'unpickles or runs whatever the input holds'
    if is_constant(keyword(call, 'weights_only'), False):
        return 'weights_only=False'
    if name == 'torch.load' and not is_constant(keyword(call, 'weights_only'), True):
        return 'torch.load without weights_only=True'
    if name in ('yaml.load', 'yaml.load_all') and dotted(keyword(call, 'Loader'), aliases) not in SAFE_YAML_LOADERS:
        return 'yaml.load without a safe loader'
    if name in ('numpy.load', 'numpy.lib.npyio.load') and not is_constant(keyword(call, 'allow_pickle'), False) \
            and keyword(call, 'allow_pickle') is not None:
        return 'numpy.load with allow_pickle'
    if name.endswith('.get_state_dict') or name.startswith('torchvision.models.') and not (
            keyword(call, 'weights') is None or is_constant(keyword(call, 'weights'), None)):
        return "torchvision's weights loader (torch.hub, full unpickler)"
    if name.endswith(('._NoTrainLpips', '._LPIPS')) and is_constant(keyword(call, 'pnet_rand'), True):
        return None  # a random backbone: nothing loaded but torchmetrics' own package data
    if name.endswith('.create_model') and is_constant(keyword(call, 'pretrained'), None):
        return None
    if name.startswith(('torchmetrics.', 'open_clip.', 'basicsr.', 'spandrel.', 'timm.')) and \
            name.rsplit('.', 1)[-1] in LIBRARY_LOADERS:
        return 'a library call that unpickles a file'
    return None


LIBRARY_LOADERS = {'load_state_dict', 'load_checkpoint', 'load_network', 'load_file', 'load_from_file',
                   'DISTSNetwork', 'LearnedPerceptualImagePatchSimilarity', '_NoTrainLpips', '_LPIPS',
                   'DeepImageStructureAndTextureSimilarity', 'create_model', 'create_model_and_transforms',
                   'load_openai_model'}


def loader_sites() -> list[tuple[str, int, str, str]]:
    """``(file, line, call, reason)`` for every call in segsr/ and scripts/ that could run code from a file."""
    sites = []
    for root in SCANNED:
        for path in sorted((ROOT / root).rglob('*.py')):
            tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
            aliases = import_aliases(tree)
            relative = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(dotted(base, aliases) == 'pickle.Unpickler'
                                                          for base in node.bases):
                    if not any(isinstance(item, ast.FunctionDef) and item.name == 'find_class' for item in node.body):
                        sites.append((relative, node.lineno, node.name, 'an Unpickler without find_class'))
                if isinstance(node, ast.Call) and (name := dotted(node.func, aliases)):
                    if (reason := unsafe_reason(node, name, aliases)) is not None:
                        sites.append((relative, node.lineno, name, reason))
    return sites


def test_no_loader_in_the_source_can_run_code_from_a_file():
    sites = loader_sites()
    unreviewed = [f'{file}:{line}: {call} ({reason})' for file, line, call, reason in sites
                  if (file, call) not in REVIEWED]
    assert not unreviewed, 'calls that could run code stored in an input: ' + '; '.join(unreviewed)
    stale = set(REVIEWED) - {(file, call) for file, _, call, _ in sites}
    assert not stale, f'reviewed sites that no longer exist: {stale}'


def test_the_reviewed_library_loaders_are_weights_only():
    import inspect

    import open_clip.factory

    from segsr.options.safe_yaml import OptionLoader

    assert inspect.signature(open_clip.factory.load_state_dict).parameters['weights_only'].default is True
    assert issubclass(OptionLoader, yaml.SafeLoader)


def test_the_scanner_finds_each_kind_of_unsafe_call(tmp_path, monkeypatch):
    """The walk above must see what it is there to catch: one planted file with every kind."""
    planted = tmp_path / 'segsr' / 'planted.py'
    planted.parent.mkdir()
    planted.write_text(
        'import pickle\nimport numpy as np\nimport torch\nimport yaml\nfrom torchvision.models import vgg16\n'
        'from torch.hub import load_state_dict_from_url as fetch\n'
        'torch.load(f)\ntorch.load(f, weights_only=False)\npickle.loads(b)\nyaml.load(t, Loader=yaml.Loader)\n'
        'yaml.full_load(t)\neval(s)\nexec(s)\nnp.load(f, allow_pickle=True)\nvgg16(weights="DEFAULT")\nfetch(u)\n'
        'torch.jit.load(f)\nclass U(pickle.Unpickler):\n    pass\n'
        'from torchmetrics.functional.image.lpips import _NoTrainLpips\n_NoTrainLpips(net="alex")\n'
        'import open_clip\nopen_clip.create_model("ViT-B-16", pretrained="openai")\n'
        'torch.load(f, weights_only=True)\nyaml.load(t, Loader=yaml.SafeLoader)\nnp.load(f)\nnet.eval()\n'
        '_NoTrainLpips(net="alex", pnet_rand=True)\nopen_clip.create_model("ViT-B-16", pretrained=None)\n')
    monkeypatch.setattr(sys.modules[__name__], 'ROOT', tmp_path)
    found = sorted(line for _, line, _, _ in loader_sites())
    assert found == [*range(7, 19), 21, 23], found


# --- 2. a user's files are never deleted, replaced or silently changed ------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, '-c', ''])
    process.wait()
    return process.pid


USER_FILES = ('survey.2024.tmp', 'x.99999999999.tmp', f'notes.{2**40}.tmp', '.hidden.partial-1.tif',
              '.a.tif.segsr-partial-99999999999.tif', '.a.tif.segsr-partial-7.png',
              'sub/.a.tif.segsr-partial-{dead}.tif', 'sub/report.{dead}.tmp')


def plant_user_files(folder: Path, dead: int) -> list[Path]:
    planted = []
    for name in USER_FILES:
        path = folder / name.format(dead=dead)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f'user data {name}'.encode())
        planted.append(path)
    return planted


def test_temporary_names_are_one_exact_pattern(tmp_path):
    dead = dead_pid()
    planted = plant_user_files(tmp_path, dead)
    stale = temporary_path(tmp_path / 'a.tif', dead)
    live = temporary_path(tmp_path / 'b.tif', os.getpid())
    for path in (stale, live):
        path.write_bytes(b'partial')
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert all(path.exists() for path in [*planted, live])
    assert all(temporary_owner(Path(name).name) is None for name in USER_FILES)


def test_the_bands_of_a_split_scene_are_named_and_cleaned_by_the_same_rule(tmp_path):
    dead = dead_pid()
    parts = [temporary_path(tmp_path / 'scene.tif', dead, part=(part, 2)) for part in (0, 1)]
    assert parts[0].name == f'.scene.tif.segsr-partial-{dead}.band-0-of-2.tif'
    live = temporary_path(tmp_path / 'scene.tif', os.getpid(), part=(0, 2))
    users = [tmp_path / name for name in (f'.scene.tif.segsr-partial-{dead}.band-2-of-2.tif',
                                          f'.scene.tif.segsr-partial-{dead}.band-0-of-2.png',
                                          f'.scene.segsr-partial-{dead}.band-0-of-2.tif',
                                          f'.scene.partial-{dead}.band-0-of-2.tif')]
    for path in (*parts, live, *users):
        path.write_bytes(b'part')
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(parts)
    assert live.exists() and all(path.exists() for path in users)


def test_infer_leaves_a_users_files_in_its_output_folder(edsr_weights, tmp_path, capsys):
    out = tmp_path / 'out'
    dead = dead_pid()
    plant_user_files(out, dead)
    stale = temporary_path(out / 'old.png', dead)
    stale.write_bytes(b'left by a killed run')
    source = png(tmp_path / 'in' / 'scene.png')
    expect_success(infer_main, ['--weights', str(edsr_weights), '--input', str(source), '--output', str(out)], out,
                   {'scene.png', MANIFEST_NAME}, capsys, removed={stale.name})
    assert not stale.exists(), 'the temporary file of a process that is gone is removed'


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f'script_{name}', ROOT / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def prepare_main():
    return load_script('prepare_dataset').main


@pytest.fixture
def ucmerced(tmp_path) -> Path:
    src = tmp_path / 'src.zip'
    rs_fakes.build(src, rs_fakes.ucmerced_members({'beach': 2, 'forest': 2}), 256)
    return src


def test_prepare_dataset_leaves_a_users_tmp_files(prepare_main, ucmerced, tmp_path, capsys):
    out = tmp_path / 'out'
    dead = dead_pid()
    planted = plant_user_files(out, dead) + plant_user_files(out / 'HR', dead)
    stale = temporary_path(out / 'LR_x4' / 'beach00.png', dead)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'left by a killed run')
    before = {path: path.read_bytes() for path in planted}
    assert prepare_main(['UCMerced', '--src', str(ucmerced), '--out', str(out), '--workers', '1',
                         '--scales', '2', '4']) == 0
    assert 'Traceback' not in capsys.readouterr().err
    assert {path: path.read_bytes() for path in planted} == before and not stale.exists()


def test_prepare_dataset_rerun_makes_lr_from_the_kept_hr(prepare_main, ucmerced, tmp_path, capsys):
    out = tmp_path / 'out'
    arguments = ['UCMerced', '--src', str(ucmerced), '--out', str(out), '--workers', '1', '--scales', '2', '4']
    assert prepare_main(arguments) == 0
    hr = out / 'HR' / 'beach00.png'
    edited = cv2.GaussianBlur(cv2.imread(str(hr)), (5, 5), 2)  # an HR that the source no longer gives
    cv2.imwrite(str(hr), edited)
    for scale in (2, 4):
        (out / f'LR_x{scale}' / 'beach00.png').unlink()
    assert prepare_main(arguments) == 0
    assert 'Traceback' not in capsys.readouterr().err
    assert np.array_equal(cv2.imread(str(hr)), edited), 'the HR image is kept'
    for scale in (2, 4):
        assert np.array_equal(cv2.imread(str(out / f'LR_x{scale}' / 'beach00.png')), make_lr_uint8(edited, scale))


def test_prepare_dataset_never_puts_a_fresh_hr_beside_an_old_lr(prepare_main, ucmerced, tmp_path, capsys):
    out = tmp_path / 'out'
    arguments = ['UCMerced', '--src', str(ucmerced), '--out', str(out), '--workers', '1', '--scales', '2', '4']
    assert prepare_main(arguments) == 0
    lr = out / 'LR_x2' / 'forest01.png'
    cv2.imwrite(str(lr), 255 - cv2.imread(str(lr)))  # an LR that no HR of this source gives
    (out / 'HR' / 'forest01.png').unlink()
    before = tree_digest(out / 'LR_x2')
    assert prepare_main(arguments) == 1
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.out + captured.err
    assert captured.err.strip().splitlines()[-1].startswith('error: 1 of 4 source images failed')
    assert f'FAILED: UCMerced_LandUse/Images/forest/forest01.tif: {lr} was not made from the HR image' in captured.out
    assert tree_digest(out / 'LR_x2') == before and not (out / 'HR' / 'forest01.png').exists()


def test_second_infer_run_does_not_replace_the_first_ones_output(edsr_weights, tmp_path, capsys):
    source, out = png(tmp_path / 'in' / 'scene.png'), tmp_path / 'out'
    arguments = ['--weights', str(edsr_weights), '--input', str(source), '--output', str(out)]
    expect_success(infer_main, arguments, out, {'scene.png', MANIFEST_NAME}, capsys)
    png(source, seed=1)  # the input changed: a rerun would write another image
    expect_cli_error('infer.py', arguments, out, (str(out / 'scene.png'), 'exists', '--overwrite'))


def test_an_output_that_appears_during_the_run_is_not_replaced(edsr_weights, tmp_path):
    """Two runs into one folder: the one that finishes second refuses to publish, at the writer itself."""
    from segsr.inference.execution.engine import TileUpscaler
    from segsr.weights.network import load_network

    source, out = png(tmp_path / 'in' / 'scene.png'), tmp_path / 'out'
    planned = plan_input(source, out)  # planned while the name was free
    out.mkdir()
    (out / 'scene.png').write_bytes(b'written meanwhile by another run')
    before = file_digests(out)
    upscaler = TileUpscaler(load_network(edsr_weights)[0], torch.device('cpu'), bf16=False, guidance=False)
    tiling = TilingOptions(tile=16, overlap=4)
    with pytest.raises(OutputExistsError) as refused:
        upscale_input(planned, upscaler, tiling, RadiometryOptions())
    reason = str(refused.value)
    assert str(out / 'scene.png') in reason and '--overwrite' in reason and '\n' not in reason
    assert file_digests(out) == before, 'the other run\'s file is kept and no temporary file is left'
    written = upscale_input(plan_input(source, out, overwrite=True), upscaler, tiling, RadiometryOptions())
    assert written == [out / 'scene.png'] and cv2.imread(str(out / 'scene.png')).shape == (64, 64, 3)


@pytest.mark.skipif(onnx_missing, reason='segsr-export needs onnxruntime and onnxscript')
def test_export_refuses_an_existing_file_unless_overwrite(edsr_weights, tmp_path):
    target = tmp_path / 'out' / 'model.onnx'
    target.parent.mkdir()
    target.write_bytes(b'an earlier export')
    expect_one_line_error(export_main, ['--weights', str(edsr_weights), '--output', str(target)], target.parent,
                          (str(target), 'exists', '--overwrite'))
    folder = target.with_name('folder.onnx')
    folder.mkdir()
    expect_one_line_error(export_main, ['--weights', str(edsr_weights), '--output', str(folder), '--overwrite'],
                          target.parent, (str(folder), 'is a folder'))
    folder.rmdir()
    export_main(['--weights', str(edsr_weights), '--output', str(target), '--overwrite'])
    assert target.read_bytes() != b'an earlier export' and sorted(target.parent.iterdir()) == [target]


def test_an_output_folder_inside_the_input_is_never_read_as_input(edsr_weights, tmp_path, capsys):
    tree = tmp_path / 'scenes'
    png(tree / 'a.png')
    png(tree / '2024' / 'b.png', seed=1)
    out = tree / 'results'
    arguments = ['--weights', str(edsr_weights), '--input', str(tree), '--recursive', '--output', str(out)]
    results = {'results/a.png', 'results/2024/b.png', f'results/{MANIFEST_NAME}'}
    expect_success(infer_main, arguments, tree, results, capsys)
    expect_success(infer_main, [*arguments, '--overwrite'], tree, results, capsys)
    assert sorted(file_digests(out)) == sorted(['2024/b.png', 'a.png', MANIFEST_NAME]), 'no result of a result'
    glob = ['--weights', str(edsr_weights), '--input', str(tree / '**' / '*.png'), '--recursive', '--output', str(out)]
    expect_success(infer_main, [*glob, '--overwrite'], tree, {'results/a.png', 'results/b.png',
                                                             f'results/{MANIFEST_NAME}'}, capsys)
    assert sorted(file_digests(out)) == sorted(['2024/b.png', 'a.png', 'b.png', MANIFEST_NAME]), \
        'a glob does not reach into results'
    assert cv2.imread(str(out / 'a.png')).shape == (64, 64, 3)


# --- georeference and masks -------------------------------------------------------------------------------------


def test_a_raster_georeferenced_by_gcps_keeps_them_on_the_finer_grid(gray_toy, tmp_path):
    gcps = [GroundControlPoint(row=0, col=0, x=500000, y=5000000, z=12), GroundControlPoint(row=16, col=0, x=500010,
            y=4999840), GroundControlPoint(row=7.5, col=16, x=500170, y=4999925, z=3)]
    source = tmp_path / 'in' / 'gcps.tif'
    source.parent.mkdir()
    with rasterio.open(source, 'w', driver='GTiff', width=16, height=16, count=1, dtype='uint16', gcps=gcps,
                       crs='EPSG:32633') as dataset:
        dataset.write(np.rint(4000 * smooth(16, 16)).astype(np.uint16)[None])
    before = tree_digest(source.parent)
    infer_main(['--weights', str(gray_toy), '--input', str(source), '--output', str(tmp_path / 'out'), '--tile', '16',
                '--overlap', '4'])
    with rasterio.open(tmp_path / 'out' / 'gcps.tif') as dataset:
        found, crs = dataset.gcps
        assert dataset.shape == (32, 32)
    assert crs == rasterio.crs.CRS.from_epsg(32633) and tree_digest(source.parent) == before
    assert [(p.row, p.col, p.x, p.y, p.z) for p in found] == [(2 * p.row, 2 * p.col, p.x, p.y, p.z or 0.0)
                                                              for p in gcps]
    opened = RasterSource(source)  # a band of the scene (one process's share) holds them from its first row on
    try:
        band = band_georeference(opened, 2, (8, 16))['gcps']
    finally:
        opened.close()
    assert [(p.row, p.col, p.x, p.y) for p in band] == [(2 * p.row - 16, 2 * p.col, p.x, p.y) for p in gcps]


def test_a_band_with_its_own_nodata_keeps_it_masked(gray_toy, tmp_path, capsys):
    """Band 1 marks nodata with 255, band 2 with 0: band 2's 0 pixels stay nodata in the output, and band 1's
    valid pixels there keep their values."""
    data = np.rint(100 + 100 * smooth(16, 16)).astype(np.uint8)[None].repeat(2, axis=0)
    data[0, :3, :3] = 255
    data[1, 10:, 10:] = 0
    folder = tmp_path / 'in'
    folder.mkdir()
    write_raster(folder / 'bands.tif', data)
    bands = ''.join(f'<VRTRasterBand dataType="Byte" band="{band}"><NoDataValue>{nodata}</NoDataValue><SimpleSource>'
                    f'<SourceFilename relativeToVRT="1">bands.tif</SourceFilename><SourceBand>{band}</SourceBand>'
                    '</SimpleSource></VRTRasterBand>' for band, nodata in ((1, 255), (2, 0)))
    (folder / 'bands.vrt').write_text(f'<VRTDataset rasterXSize="16" rasterYSize="16">{bands}</VRTDataset>')
    before = tree_digest(folder)
    infer_main(['--weights', str(gray_toy), '--input', str(folder / 'bands.vrt'), '--output', str(tmp_path / 'out'),
                '--bands', 'each', '--tile', '16', '--overlap', '4'])
    assert 'a nodata value per band' in capsys.readouterr().err and tree_digest(folder) == before
    with rasterio.open(tmp_path / 'out' / 'bands.tif') as dataset:
        out, nodata = dataset.read(), dataset.nodata
    invalid_band2 = np.kron(data[1] == 0, np.ones((2, 2), bool))
    invalid_band1 = np.kron(data[0] == 255, np.ones((2, 2), bool))
    assert (out[1][invalid_band2] == nodata).all(), 'band 2 nodata pixels stay nodata'
    assert (out[1][~invalid_band2] != nodata).all() and (out[0][~invalid_band1] != nodata).all()
    assert (out[0][invalid_band1] == nodata).all()
