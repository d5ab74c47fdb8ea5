"""Weights as safetensors with a model card: written by a training run, opened without pickle, taken by every
reader, described by segsr-card; old torch files still load."""

import json
import warnings

import numpy as np
import pytest
import torch
from conftest import TINY_HAT, eval_options, train_options, write_yaml

import segsr
from segsr import evaluation
from segsr.card import main as card_main
from segsr.export import main as export_main
from segsr.infer import main as infer_main
from segsr.training import main as train_main
from segsr.utils.errors import SegSRError
from segsr.weights.card_formats import MLM_REQUIRED, read_card
from segsr.weights.files import load_checkpoint
from segsr.weights.network import load_network

HAT = {'type': 'HAT', 'upscale': 4, 'in_chans': 3, 'img_range': 1.0, **TINY_HAT}


@pytest.fixture(scope='module')
def trained(demo_data, tmp_path_factory):
    """A two-iteration tiny HAT run with the default weights format and a licence for its card."""
    root = tmp_path_factory.mktemp('safetensors')
    options = train_options(demo_data, 'tiny_hat', network=HAT)
    del options['logger']['save_checkpoint_format']  # the default
    options['logger']['card'] = {'license': 'CC-BY-4.0'}
    train_main(['-opt', str(write_yaml(root / 'train.yml', options)), '--root', str(root)])
    return root, root / 'experiments' / 'tiny_hat' / 'models'


def test_a_run_writes_safetensors_that_open_without_pickle(trained):
    from safetensors import safe_open

    _, models = trained
    assert {'net_g_2.safetensors', 'net_g_latest.safetensors'} <= {path.name for path in models.iterdir()}
    assert not list(models.glob('*.pth'))
    with safe_open(str(models / 'net_g_2.safetensors'), framework='pt') as handle:
        names = list(handle.keys())
    assert any(name.startswith('params_ema.') for name in names) and any(name.startswith('params.') for name in names)
    with safe_open(str(models / 'net_g_latest.safetensors'), framework='pt') as handle:
        names, metadata = list(handle.keys()), handle.metadata()
    assert not any(name.startswith('params') for name in names), 'the final file holds its EMA weights bare'
    assert metadata['segsr_weights_key'] == 'params_ema'
    assert json.loads(metadata['network_g'])['type'] == 'HAT'
    assert json.loads(metadata['options'])['name'] == 'tiny_hat'
    assert json.loads(metadata['radiometry'])['range'] == [[0.0], [255.0]]
    network, options = load_network(models / 'net_g_latest.safetensors')  # the file alone rebuilds it
    assert options['type'] == 'HAT' and network(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_spandrel_reads_the_final_safetensors_file(trained):
    spandrel = pytest.importorskip('spandrel')
    _, models = trained
    ours, _ = load_network(models / 'net_g_latest.safetensors')
    theirs = spandrel.ModelLoader().load_from_file(str(models / 'net_g_latest.safetensors'))
    assert theirs.architecture.name == 'HAT' and theirs.scale == 4
    lr = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(theirs.model.eval()(lr), ours(lr), atol=1e-5)


def test_the_card_holds_bands_contract_data_and_metrics(trained, demo_data):
    _, models = trained
    card = read_card(models / 'net_g_latest.safetensors')
    network, _ = load_network(models / 'net_g_latest.safetensors')
    assert card['architecture']['type'] == 'HAT'
    assert card['architecture']['parameters'] == sum(p.numel() for p in network.parameters())
    assert card['scale'] == 4 and card['license'] == 'CC-BY-4.0'
    assert card['input'] == {'count': 3, 'bands': ['red', 'green', 'blue'], 'dtype': 'uint8',
                             'order': 'network channel order'}
    assert card['degradation'] == [{'type': 'paired', 'dataroot_lq': str(demo_data / 'LR_x4' / 'train'), 'scale': 4}]
    (data,) = card['training_data']
    meta = demo_data / 'meta' / 'train.txt'
    assert data['name'] == 'demo_train' and data['count'] == len(meta.read_text().split())
    import hashlib
    assert data['meta_info_file']['sha256'] == hashlib.sha256(meta.read_bytes()).hexdigest()
    protocol = card['validation']['protocol']['metrics']
    assert protocol['psnr'] == {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}
    psnr = card['validation']['results']['demo_val']['psnr']
    assert psnr['best_iter'] == 2 and psnr['last'] == psnr['best'] and 0 < psnr['best'] < 100
    assert card['segsr']['version'] == segsr.__version__


def test_test_py_infer_api_and_export_take_safetensors(trained, demo_data, tmp_path):
    root, models = trained
    weights = models / 'net_g_latest.safetensors'
    named_pth = models / 'net_g_latest.pth'  # what existing test option files name: its safetensors twin is read
    test_file = write_yaml(tmp_path / 'test.yml', eval_options(demo_data, 'tiny_hat', named_pth, network=HAT))
    evaluation.main(['-opt', str(test_file), '--root', str(tmp_path)])
    payload = json.loads((tmp_path / 'results' / 'tiny_hat' / 'demo_val.json').read_text())
    assert payload['weights'] == str(weights) and 0 < payload['average']['psnr'] < 100

    rgb = np.random.default_rng(0).integers(0, 256, (3, 12, 16), dtype=np.uint8)
    upscaled = segsr.load(weights, device='cpu').upscale(rgb, layout='chw')
    assert upscaled.shape == (3, 48, 64) and upscaled.dtype == np.uint8
    import cv2
    cv2.imwrite(str(tmp_path / 'a.png'), rgb.transpose(1, 2, 0))
    infer_main(['--weights', str(weights), '--input', str(tmp_path / 'a.png'), '--output', str(tmp_path / 'out'),
                '--device', 'cpu'])
    assert (tmp_path / 'out' / 'a.png').is_file()
    pytest.importorskip('onnxruntime')
    export_main(['--weights', str(weights), '--output', str(tmp_path / 'model.onnx')])
    assert (tmp_path / 'model.onnx').is_file()


def test_an_old_torch_file_still_loads(trained, tmp_path):
    _, models = trained
    content = load_checkpoint(models / 'net_g_2.safetensors')
    old = {key: content[key] for key in ('params', 'params_ema', 'network_g', 'radiometry')}
    torch.save(old, tmp_path / 'old.pth')
    network, options = load_network(tmp_path / 'old.pth')
    assert options['type'] == 'HAT'
    for name, tensor in network.state_dict().items():
        if name in content['params_ema']:
            assert torch.equal(tensor, content['params_ema'][name])
    with pytest.raises(SegSRError, match='holds no model card'):
        read_card(tmp_path / 'old.pth')


def test_segsr_card_prints_markdown_and_writes_stac_mlm(trained, tmp_path, capsys):
    _, models = trained
    weights = models / 'net_g_latest.safetensors'
    card_main([str(weights), '--stac', str(tmp_path / 'item.json')])
    markdown = capsys.readouterr().out
    for text in ('# tiny_hat', 'HAT', 'x4', 'red, green, blue', 'physical 0..255 -> 0..1', 'demo_train',
                 'CC-BY-4.0', '| demo_val | psnr |'):
        assert text in markdown, text
    item = json.loads((tmp_path / 'item.json').read_text())
    properties = item['properties']
    assert all(field in properties for field in MLM_REQUIRED)
    assert any('/mlm/' in extension for extension in item['stac_extensions'])
    assert properties['mlm:architecture'] == 'HAT' and properties['mlm:framework'] == 'pytorch'
    (model_input,) = properties['mlm:input']
    assert model_input['bands'] == ['red', 'green', 'blue']
    assert model_input['input'] == {'shape': [-1, 3, -1, -1], 'dim_order': ['batch', 'channel', 'height', 'width'],
                                    'data_type': 'uint8'}
    assert model_input['value_scaling'] == [{'type': 'min-max', 'minimum': 0.0, 'maximum': 255.0}] * 3
    (output,) = properties['mlm:output']
    assert output['tasks'] == ['super-resolution'] and output['result']['shape'][1] == 3
    assert item['assets']['weights']['roles'] == ['mlm:model']
    assert item['assets']['weights']['mlm:artifact_type'] == 'safetensors'


def test_an_input_unlike_the_card_is_one_line_or_one_warning(trained, tmp_path):
    _, models = trained
    upscaler = segsr.load(models / 'net_g_latest.safetensors', device='cpu')
    with pytest.raises(SegSRError) as error:
        upscaler.upscale(np.zeros((4, 12, 16), np.uint8), layout='chw')
    message = str(error.value)
    assert '\n' not in message and '4 band(s)' in message and 'expects 3' in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        upscaler.upscale(np.full((3, 12, 16), 0.5, np.float32), layout='chw')
    assert len(caught) == 1 and 'float32' in str(caught[0].message) and 'uint8' in str(caught[0].message)


def test_a_safetensors_run_resumes(trained):  # last: it adds iteration 3 to the shared run
    root, models = trained
    opt_file = root / 'train.yml'
    train_main(['-opt', str(opt_file), '--root', str(root), '--auto_resume', '--force_yml',
                'train:total_iter=3', 'logger:save_checkpoint_freq=3', 'val:val_freq=3'])
    state = torch.load(root / 'experiments' / 'tiny_hat' / 'training_states' / '3.state', weights_only=True)
    assert {int(s['step']) for s in state['optimizers'][0]['state'].values()} == {3}, 'continued from iteration 2'
    assert (models / 'net_g_3.safetensors').is_file()


def test_segsr_card_folder_is_ready_to_upload_and_never_overwrites(trained, tmp_path, capsys):
    from safetensors import safe_open

    _, models = trained
    torch.save(load_checkpoint(models / 'net_g_latest.safetensors'), tmp_path / 'net_g.pth')
    for weights, folder in ((models / 'net_g_latest.safetensors', tmp_path / 'from_safetensors'),
                            (tmp_path / 'net_g.pth', tmp_path / 'from_pth')):
        card_main([str(weights), '--folder', str(folder)])
        assert sorted(path.name for path in folder.iterdir()) == ['README.md', 'model.json', 'model.safetensors']
        with safe_open(folder / 'model.safetensors', framework='pt') as handle:
            assert 'card' in handle.metadata()
        assert 'red, green, blue' in (folder / 'README.md').read_text()
        item = json.loads((folder / 'model.json').read_text())
        assert item['assets']['weights']['href'] == 'model.safetensors'
        assert load_network(folder / 'model.safetensors') is not None
    folder = tmp_path / 'from_safetensors'
    before = (folder / 'README.md').read_bytes()
    with pytest.raises(SystemExit, match='already holds model.safetensors, README.md, model.json'):
        card_main([str(models / 'net_g_latest.safetensors'), '--folder', str(folder)])
    assert (folder / 'README.md').read_bytes() == before
