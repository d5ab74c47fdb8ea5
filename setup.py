from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / 'requirements.txt').read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='segsr',
    version='0.1.0',
    description='Semantic-guided super-resolution of remote-sensing imagery (SeG-SR) on basicsr',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['segsr', 'segsr.*']),
    package_data={'segsr': ['data/splits/*/*/*.txt', 'clip/configs/*.json', 'weights/catalogue.yml']},
    license='Apache-2.0',
    python_requires='>=3.10',
    install_requires=requirements(),
    extras_require={'dev': ['pytest', 'ruff'], 'onnx': ['onnx', 'onnxscript', 'onnxruntime'],
                    'xarray': ['xarray', 'rioxarray'], 'hub': ['huggingface_hub']},
    entry_points={'console_scripts': [
        'segsr-train=segsr.train:main',
        'segsr-test=segsr.test:main',
        'segsr-infer=segsr.infer:main',
        'segsr-export=segsr.export:main',
        'segsr-card=segsr.card:main',
        'segsr-schema=segsr.schema:main',
    ]},
)
