"""The named splits: shipped lists equal regenerated ones, and the generator's guarantees."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from segsr.data.classes import class_from_name
from segsr.data.prepare.specs import EIGHTY_TEN_TEN, UCMERCED_CLASSES, per_class_counts
from segsr.data.prepare.splits import make_split, read_split, shipped_split_dir
from segsr.utils.errors import SegSRError

REPO = Path(__file__).resolve().parents[1]


def load_make_splits():
    spec = importlib.util.spec_from_file_location('make_splits', REPO / 'scripts' / 'make_splits.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_class(names: list[str]) -> dict[str, int]:
    return dict(Counter(class_from_name(name) for name in names))


def test_shipped_splits_equal_regenerated():
    regenerated = load_make_splits().shipped_splits()
    assert set(regenerated) == {('UCMerced', 'transenet'), ('UCMerced', 'funsr'), ('UCMerced', '80-10-10')}
    for (dataset, split_name), split in regenerated.items():
        assert read_split(shipped_split_dir(dataset, split_name)) == split


@pytest.mark.parametrize('split_name, sizes', [('transenet', (45, 5, 50)), ('funsr', (60, 20, 20)),
                                               ('80-10-10', (80, 10, 10))])
def test_shipped_ucmerced_split_sizes(split_name, sizes):
    split = read_split(shipped_split_dir('UCMerced', split_name))
    everything = [name for part in split.values() for name in part]
    assert len(everything) == len(set(everything)) == 2100
    for part, size in zip(('train', 'val', 'test'), sizes, strict=True):
        assert per_class(split[part]) == {label: size for label in UCMERCED_CLASSES}


def names(per_label: dict[str, int]) -> dict[str, list[str]]:
    return {label: [f'{label.lower()}_{i + 1}.png' for i in range(n)] for label, n in per_label.items()}


def test_generation_is_deterministic_and_seeded():
    pool = names({'Airport': 30, 'Beach': 25})
    assert make_split(pool, EIGHTY_TEN_TEN, 0) == make_split(pool, EIGHTY_TEN_TEN, 0)
    assert make_split(pool, EIGHTY_TEN_TEN, 0) != make_split(pool, EIGHTY_TEN_TEN, 1)
    reordered = {label: list(reversed(v)) for label, v in reversed(pool.items())}
    assert make_split(reordered, EIGHTY_TEN_TEN, 0) == make_split(pool, EIGHTY_TEN_TEN, 0)


def test_a_class_split_ignores_other_classes():
    alone = make_split(names({'Airport': 30}), EIGHTY_TEN_TEN, 3)
    together = make_split(names({'Airport': 30, 'Beach': 25}), EIGHTY_TEN_TEN, 3)
    assert all(set(alone[part]) <= set(together[part]) for part in alone)


def test_fractions_round_per_class():
    split = make_split(names({'Bridge': 25, 'Airport': 310}), EIGHTY_TEN_TEN, 0)
    assert per_class(split['val']) == {'bridge': 3, 'airport': 31}
    assert per_class(split['test']) == {'bridge': 3, 'airport': 31}
    assert per_class(split['train']) == {'bridge': 19, 'airport': 248}


def test_ttst_keeps_its_train_and_test_whatever_the_validation_part():
    pool = names({'Airport': 360, 'Park': 220})
    ttst = make_split(pool, per_class_counts('ttst', 100, 10, 30), 0)
    assert per_class(ttst['train']) == {'airport': 100, 'park': 100}
    assert per_class(ttst['test']) == {'airport': 30, 'park': 30}
    without_val = make_split(pool, per_class_counts('ttst', 100, 0, 30), 0)
    assert without_val['train'] == ttst['train'] and without_val['test'] == ttst['test']
    assert not set(ttst['val']) & (set(ttst['train']) | set(ttst['test']))


def test_too_small_class_is_an_error():
    with pytest.raises(SegSRError, match="class 'Airport' has 100 images but split 'ttst' needs 140"):
        make_split(names({'Airport': 100}), per_class_counts('ttst', 100, 10, 30), 0)
