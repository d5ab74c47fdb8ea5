"""Bad degradation options: one line naming the key and the fix, exit non-zero, before any folder is made."""

import pytest
from conftest import train_options, write_yaml

from segsr.training import main as train_main

SENSOR = {'mtf': 0.3, 'snr': 50, 'reference': 0.5}
SMALL_KERNELS = {'blur_kernel_size': 7, 'blur_kernel_size2': 7}  # the demo's 32-pixel crops give 8-pixel LR
BAD = [  # (id, settings of datasets.train, words of the one line)
    ('unknown_name', {'degradation': 'sensr'}, ("unknown degradation 'sensr'", 'did you mean "sensor"')),
    ('unknown_key', {'degradation': 'sensor', 'sensor': {**SENSOR, 'snrr': 10}}, ('snrr', 'snr')),
    ('mtf_above_one', {'degradation': 'sensor', 'sensor': {**SENSOR, 'mtf': 1.5}}, ('sensor.mtf', '(0, 1)')),
    ('mtf_zero', {'degradation': 'sensor', 'sensor': {**SENSOR, 'mtf': 0.0}}, ('sensor.mtf', '(0, 1)')),
    ('snr_negative', {'degradation': 'sensor', 'sensor': {**SENSOR, 'snr': -1}}, ('sensor.snr', 'greater than 0')),
    ('even_kernel', {'degradation': 'realesrgan', **SMALL_KERNELS, 'blur_kernel_size': 8},
     ('blur_kernel_size', 'odd')),
    ('oversized_kernel', {'degradation': 'realesrgan', 'blur_kernel_size': 21, 'blur_kernel_size2': 7},
     ('blur_kernel_size', 'larger than the LR crop')),
    ('probability_above_one', {'degradation': 'realesrgan', **SMALL_KERNELS, 'sinc_prob': 1.5}, ('sinc_prob',)),
    ('shares_not_one', {'degradation': 'realesrgan', **SMALL_KERNELS, 'kernel_prob': [0.5, 0.5, 0, 0, 0, 0.5]},
     ('kernel_prob', 'sums to 1.5')),
    ('pool_not_divisible', {'degradation': 'realesrgan', **SMALL_KERNELS, 'queue_size': 7}, ('queue_size',)),
]


@pytest.mark.parametrize('settings,words', [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_degradation_option_is_one_line_before_any_folder(demo_data, tmp_path, capsys, settings, words):
    options = train_options(demo_data, 'bad_degradation')
    options['datasets']['train'] |= settings
    with pytest.raises(SystemExit) as stop:
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path / 'root')])
    message = str(stop.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    for word in words:
        assert word in message, f'{word!r} not in {message!r}'
    assert not (tmp_path / 'root').exists()
    assert 'Traceback' not in capsys.readouterr().err
