"""One product as the input of a run: where it is, and which bands it is asked for."""

import os
from dataclasses import dataclass
from pathlib import Path

from segsr.sentinel2.product import product_stem

QA_SUFFIX = '_SCL.tif'
"""The SCL of an L2A product, on the output grid, beside the output: ``<product>_SCL.tif``."""


@dataclass(frozen=True)
class ProductInput(os.PathLike):
    """A product path (``os.fspath`` gives it) with the band names to stack, whether coarser bands are
    resampled to the finest, and the SCL classes that become nodata."""

    path: Path
    bands: tuple[str, ...] | None = None
    resample: bool = False
    mask_classes: tuple[int, ...] = ()

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return product_stem(self.path)

    @property
    def has_scene_classes(self) -> bool:
        """An L2A product (by its name, S2x_MSIL2A_...): it carries an SCL."""
        return '_MSIL2A_' in self.path.name.upper()
