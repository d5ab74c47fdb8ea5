"""What each supported dataset looks like as distributed, and which splits it gets."""

from dataclasses import dataclass, field

from segsr.utils.errors import SegSRError

SHIPPED_SEED = 0
SPLIT_PARTS = ('train', 'val', 'test')

UCMERCED_CLASSES = (
    'agricultural', 'airplane', 'baseballdiamond', 'beach', 'buildings', 'chaparral', 'denseresidential', 'forest',
    'freeway', 'golfcourse', 'harbor', 'intersection', 'mediumresidential', 'mobilehomepark', 'overpass',
    'parkinglot', 'river', 'runway', 'sparseresidential', 'storagetanks', 'tenniscourt',
)


@dataclass(frozen=True)
class SplitRule:
    """A per-class split: exact image counts, or fractions of each class (train takes the rest)."""

    name: str
    train: float
    val: float
    test: float
    exact: bool

    def describe(self) -> str:
        if self.exact:
            return f'per class {self.train:g} train / {self.val:g} val / {self.test:g} test images'
        return f'per class {self.train:.0%} train / {self.val:.0%} val / {self.test:.0%} test'


def per_class_counts(name: str, train: int, val: int, test: int) -> SplitRule:
    return SplitRule(name, train, val, test, exact=True)


def per_class_fractions(name: str, train: float, val: float, test: float) -> SplitRule:
    return SplitRule(name, train, val, test, exact=False)


EIGHTY_TEN_TEN = per_class_fractions('80-10-10', 0.8, 0.1, 0.1)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's distributed form: nominal image side, optional centre crop, and its named splits.

    ``shipped`` datasets have their split lists in ``segsr/data/splits/<name>``, generated from
    ``canonical_names`` (the complete, known file list); the others get their lists at preparation
    time from the sorted list of files actually found, which is recorded in the manifest.
    """

    name: str
    size: int
    splits: tuple[SplitRule, ...]
    url: str
    crop: int | None = None
    canonical_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def shipped(self) -> bool:
        return bool(self.canonical_names)


def _ucmerced_names() -> dict[str, tuple[str, ...]]:
    return {label: tuple(f'{label}{i:02d}.png' for i in range(100)) for label in UCMERCED_CLASSES}


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            'UCMerced', 256,
            (per_class_counts('transenet', 45, 5, 50), per_class_counts('funsr', 60, 20, 20), EIGHTY_TEN_TEN),
            'http://weegee.vision.ucmerced.edu/datasets/landuse.html', canonical_names=_ucmerced_names()),
        DatasetSpec('AID', 600, (EIGHTY_TEN_TEN,), 'https://captain-whu.github.io/AID/'),
        DatasetSpec('AID-512', 600, (per_class_counts('ttst', 100, 10, 30),), 'https://captain-whu.github.io/AID/',
                    crop=512),
        DatasetSpec('SIRI-WHU', 200, (EIGHTY_TEN_TEN,), 'http://www.lmars.whu.edu.cn/prof_web/zhongyanfei/e-code.html'),
        DatasetSpec('WHU-RS19', 600, (EIGHTY_TEN_TEN,), 'https://captain-whu.github.io/BED4RS/'),
        DatasetSpec('RSSCN7', 400, (EIGHTY_TEN_TEN,), 'Zou et al., IEEE GRSL 2015 (RSSCN7 archive from the authors)'),
    )
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise SegSRError(f'unknown dataset {name!r}; use one of: {", ".join(DATASETS)}')
    return DATASETS[name]
