"""logger.wandb: off (project null, as in basicsr's files) passes; a project, which nothing would use, stops the run."""

import pytest
from conftest import train_options, write_yaml

from segsr.options.schema import validate_options
from segsr.training import main as train_main


def test_a_wandb_project_is_refused_before_any_folder(demo_data, tmp_path):
    options = train_options(demo_data, 'wandb')
    options['logger']['wandb'] = {'project': 'segsr', 'resume_id': None}
    with pytest.raises(SystemExit) as exit_info:
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    message = str(exit_info.value.code)
    assert '\n' not in message and "logger.wandb.project: 'segsr' is not used" in message
    assert 'wandb sync --sync-tensorboard' in message
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


@pytest.mark.parametrize('wandb', [None, {'project': None, 'resume_id': None}])
def test_wandb_switched_off_passes(demo_data, wandb):
    options = train_options(demo_data, 'wandb_off')
    options['logger']['wandb'] = wandb
    validate_options(options, 'o.yml', is_train=True)
