"""The check of every file a dataset lists, made when the dataset is built, before a run writes anything.

Only headers are read, so a bad file (missing, empty, not an image, truncated), an LR/HR pair whose sizes do
not fit the scale, or an image smaller than the training crop is reported in seconds, all in one line,
instead of one of them stopping the run mid-epoch.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from segsr.data.image_files import BadImageFile, ImageHeader, read_header
from segsr.utils.errors import SegSRError

SHOWN_PROBLEMS = 3

PairRule = Callable[[str, ImageHeader, str, ImageHeader, int], str | None]


@dataclass(frozen=True)
class Problem:
    text: str
    fix: str


@dataclass(frozen=True)
class FileCheck:
    """How a dataset's files were found: how many, in how long, and the warning about converted images."""

    files: int
    seconds: float
    warning: str | None

    def log(self, logger: logging.Logger, where: str) -> None:
        logger.info(f'{where}: {self.files} files checked (headers and sizes) in {self.seconds:.2f} s.')
        if self.warning:
            logger.warning(f'{where}: {self.warning}')


def modcrop_pair_problem(gt_path: str, gt: ImageHeader, lq_path: str, lq: ImageHeader, scale: int) -> str | None:
    """LR made from modcrop(HR): the LR must be floor(HR / scale) on each side."""
    if (lq.width, lq.height) == (gt.width // scale, gt.height // scale):
        return None
    return (f'{lq_path} is {lq.width}x{lq.height} but {gt_path} ({gt.width}x{gt.height}) at scale {scale} needs '
            f'{gt.width // scale}x{gt.height // scale}')


def exact_pair_problem(gt_path: str, gt: ImageHeader, lq_path: str, lq: ImageHeader, scale: int) -> str | None:
    """basicsr's training crop: the HR must be exactly scale times the LR."""
    if (gt.width, gt.height) == (lq.width * scale, lq.height * scale):
        return None
    return (f'{gt_path} is {gt.width}x{gt.height} but {lq_path} ({lq.width}x{lq.height}) at scale {scale} needs '
            f'{lq.width * scale}x{lq.height * scale}')


def covering_pair_problem(gt_path: str, gt: ImageHeader, lq_path: str, lq: ImageHeader, scale: int) -> str | None:
    """basicsr outside training crops the HR to LR * scale, so it must be at least that large."""
    if gt.width >= lq.width * scale and gt.height >= lq.height * scale:
        return None
    return (f'{gt_path} is {gt.width}x{gt.height}, smaller than {lq_path} ({lq.width}x{lq.height}) '
            f'times scale {scale}')


PAIR_FIX = 'point dataroot_lq at the LR folder of this scale, or set scale to match'


def listed_files(dataset, dataset_opt: dict) -> list[dict[str, str]]:
    """Each item's files by role (``gt``, ``lq``), from the ``paths`` list basicsr's datasets keep."""
    lone_role = 'gt' if dataset_opt.get('dataroot_gt') else 'lq'
    items = []
    for entry in getattr(dataset, 'paths', None) or []:
        if isinstance(entry, dict):
            items.append({key.removesuffix('_path'): str(path) for key, path in entry.items() if key.endswith('_path')})
        else:
            items.append({lone_role: str(entry)})
    return items


def pair_rule_of(dataset, dataset_opt: dict) -> PairRule:
    """The dataset's own rule where it has one, else basicsr's (exact in training, GT cropped otherwise)."""
    own = getattr(dataset, 'pair_size_problem', None)
    if own is not None:
        return own
    return exact_pair_problem if dataset_opt.get('phase') == 'train' else covering_pair_problem


def size_problems(item: dict[str, str], headers: dict[str, ImageHeader], dataset_opt: dict,
                  pair_rule: PairRule) -> list[Problem]:
    scale = int(dataset_opt.get('scale') or 1)
    gt_path, lq_path = item.get('gt'), item.get('lq')
    problems = []
    if gt_path and lq_path:
        text = pair_rule(gt_path, headers[gt_path], lq_path, headers[lq_path], scale)
        if text:
            problems.append(Problem(text, PAIR_FIX))
    if gt_path:
        gt = headers[gt_path]
        crop = int(dataset_opt['gt_size']) if dataset_opt.get('phase') == 'train' and dataset_opt.get('gt_size') else 0
        if min(gt.width, gt.height) < max(crop, scale):
            need = f'gt_size {crop}' if crop >= scale else f'scale {scale}'
            fix = 'lower gt_size or remove the image' if crop >= scale else 'remove the image'
            problems.append(Problem(f'{gt_path} is {gt.width}x{gt.height}, smaller than {need}', fix))
    return problems


def converted_images_warning(headers: list[ImageHeader]) -> str | None:
    """One sentence on the images that the 8-bit 3-channel read changes, with their counts."""
    gray = sum(header.gray for header in headers)
    deep = sum(header.high_bit_depth for header in headers)
    alpha = sum(header.alpha for header in headers)
    parts = []
    if gray:
        parts.append(f'{gray} are gray (read as 3 equal channels)')
    if deep:
        parts.append(f'{deep} have more than 8 bits per sample (reduced to 8 bits: the finer levels are lost)')
    if alpha:
        parts.append(f'{alpha} have an alpha channel (dropped)')
    if not parts:
        return None
    return (f'of {len(headers)} images, {", ".join(parts)}; every image is read as 8-bit RGB. Convert these '
            'files beforehand if that is not what you want to train or test on')


def problems_line(where: str, problems: list[Problem], files: int) -> str:
    shown = problems[:SHOWN_PROBLEMS]
    texts = '; '.join(problem.text for problem in shown)
    if len(problems) > len(shown):
        texts += f' (and {len(problems) - len(shown)} more problems among the {files} listed files)'
    fixes = '; '.join(dict.fromkeys(problem.fix for problem in shown))
    return f'{where}: {texts}; {fixes}'


def check_dataset_files(dataset, dataset_opt: dict, where: str) -> FileCheck | None:
    """Read the header of every listed file and check the sizes; all problems found raise one SegSRError.

    Returns None for datasets whose files are not on disk (lmdb) or that keep no ``paths`` list.
    """
    if (dataset_opt.get('io_backend') or {}).get('type', 'disk') != 'disk':
        return None
    items = listed_files(dataset, dataset_opt)
    if not items:
        return None
    start = time.perf_counter()
    headers: dict[str, ImageHeader] = {}
    bad: set[str] = set()
    problems: list[Problem] = []
    pair_rule = pair_rule_of(dataset, dataset_opt)
    header_of = getattr(dataset, 'read_header', read_header)  # rasters are checked through GDAL
    for item in items:
        for path in item.values():
            if path in headers or path in bad:
                continue
            try:
                headers[path] = header_of(path)
            except BadImageFile as err:
                bad.add(path)
                problems.append(Problem(str(err), err.fix))
        if not bad.intersection(item.values()):
            problems.extend(size_problems(item, headers, dataset_opt, pair_rule))
    seconds = time.perf_counter() - start
    if problems:
        raise SegSRError(problems_line(where, problems, len(headers) + len(bad)))
    return FileCheck(len(headers), seconds, converted_images_warning(list(headers.values())))
