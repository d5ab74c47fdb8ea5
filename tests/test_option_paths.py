"""Where runs are written when the command line names no --root: beside segsr/ in the checkout."""

from conftest import ROOT, eval_options, write_yaml

from segsr.options.cli import parse_command_line, setup_options


def test_default_root_is_the_checkout_so_results_land_beside_segsr(tmp_path, demo_data):
    options = write_yaml(tmp_path / 'test.yml', eval_options(demo_data, 'root_probe', tmp_path / 'net_g.pth'))
    opt = setup_options(parse_command_line(False, ['-opt', str(options)]), is_train=False)
    assert (ROOT / 'setup.py').is_file()
    assert opt['root_path'] == str(ROOT)
    assert opt['path']['results_root'] == str(ROOT / 'results' / 'root_probe')
