"""Preparing a dataset: HR and LR_x{s} images, split lists and the manifest, resumably and in parallel."""

import contextlib
import json
import multiprocessing
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from segsr.data.classes import MANIFEST_NAME, read_manifest
from segsr.data.prepare.images import ImageJob, ImageResult, process_image
from segsr.data.prepare.sources import SourceImage, list_images
from segsr.data.prepare.specs import SHIPPED_SEED, DatasetSpec, SplitRule, get_spec
from segsr.data.prepare.splits import Split, make_split, read_split, shipped_split_dir, write_split
from segsr.utils.errors import SegSRError
from segsr.utils.files import remove_stale_temp_files, write_text_if_changed

DEFAULT_SCALES = (2, 3, 4, 8)
LR_RULE = 'LR_x{s} = uint8(round(255 * imresize(modcrop(HR, s) / 255, 1 / s))), basicsr MATLAB-style bicubic'


def _init_worker() -> None:
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _reusable(job: ImageJob, previous: dict) -> ImageResult | None:
    """A finished image already described by the last manifest needs no decoding at all."""
    entry = previous.get('images', {}).get(job.name)
    if entry is None or entry['source'] != job.member or not all(p.exists() for p in job.outputs().values()):
        return None
    return ImageResult(job.name, job.member, tuple(entry['source_size']), tuple(entry['size']))


def _fresh_process_context() -> multiprocessing.context.BaseContext:
    """Workers that do not fork the calling process: a fork of a process whose torch and OpenMP threads are
    running can deadlock in the worker (seen in ``torch.set_num_threads``)."""
    method = 'forkserver' if 'forkserver' in multiprocessing.get_all_start_methods() else 'spawn'
    return multiprocessing.get_context(method)


def _run_jobs(jobs: list[ImageJob], workers: int, desc: str, progress: bool) -> list[ImageResult]:
    with contextlib.ExitStack() as stack:
        if workers <= 1 or len(jobs) <= 1:
            results = map(process_image, jobs)
        else:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                                           mp_context=_fresh_process_context()))
            results = pool.map(process_image, jobs, chunksize=4)
        return list(tqdm(results, total=len(jobs), desc=desc, unit='img', disable=not progress))


def _remove_stale_temp_files(out: Path, scales: tuple[int, ...], spec: DatasetSpec) -> None:
    """The temporary files of killed runs, in the folders this preparation writes, and nowhere else."""
    folders = [out, out / 'HR', *(out / f'LR_x{scale}' for scale in scales), out / 'splits',
               *(out / 'splits' / rule.name for rule in spec.splits)]
    for folder in folders:
        remove_stale_temp_files(folder)


def _base_split(spec: DatasetSpec, rule: SplitRule, names_by_class: dict[str, list[str]], seed: int) -> tuple:
    if spec.shipped and seed == SHIPPED_SEED:
        return read_split(shipped_split_dir(spec.name, rule.name)), 'shipped'
    return make_split(names_by_class, rule, seed), 'generated from the sorted source file list'


def _base_splits(spec: DatasetSpec, names_by_class: dict[str, list[str]], seed: int) -> dict[SplitRule, tuple]:
    """Every split of the dataset over all source images; built first, so a class too small for a
    generated split fails before any work."""
    return {rule: _base_split(spec, rule, names_by_class, seed) for rule in spec.splits}


def _write_splits(out: Path, base_splits: dict[SplitRule, tuple], prepared: set[str], seed: int) -> dict:
    summary = {}
    for rule, (split, origin) in base_splits.items():
        kept: Split = {part: [name for name in names if name in prepared] for part, names in split.items()}
        write_split(out / 'splits' / rule.name, kept)
        missing = sorted(name for names in split.values() for name in names if name not in prepared)
        summary[rule.name] = {
            'origin': origin, 'seed': seed, 'rule': rule.describe(),
            'counts': {part: len(names) for part, names in kept.items()}, 'missing': missing,
        }
    return summary


def _manifest(spec, src: Path, images, results, splits, seed, scales, keep_off_size) -> dict:
    done = {r.name: r for r in results if r.error is None}
    label_of = {image.name: image.label for image in images}
    per_class = Counter(label_of[name] for name in done)
    off_size = [
        {'image': name, 'source_size': list(r.source_size),
         'action': 'kept' if keep_off_size else f'resized to {spec.size}x{spec.size}'}
        for name, r in sorted(done.items()) if r.source_size != (spec.size, spec.size)
    ]
    return {
        'dataset': spec.name,
        'source': {'path': str(src), 'kind': 'folder' if src.is_dir() else 'zip', 'images_found': len(images),
                   'url': spec.url},
        'seed': seed,
        'scales': list(scales),
        'nominal_size': spec.size,
        'centre_crop': spec.crop,
        'off_size_policy': 'keep' if keep_off_size else 'resize',
        'lr_rule': LR_RULE,
        'counts': {'images': len(done), 'classes': len(per_class), 'per_class': dict(sorted(per_class.items())),
                   'off_size': len(off_size), 'failed': len(results) - len(done)},
        'classes': sorted(per_class),
        'images': {name: {'class': label_of[name], 'source': r.member, 'source_size': list(r.source_size),
                          'size': list(r.size)} for name, r in sorted(done.items())},
        'off_size': off_size,
        'failed': [{'source': r.member, 'error': r.error} for r in results if r.error is not None],
        'splits': splits,
    }


def check_arguments(spec: DatasetSpec, out: Path, scales: tuple[int, ...], workers: int | None) -> None:
    """Refuse arguments that would make a run write HR files and then fail every LR, before anything is written."""
    side = spec.crop or spec.size
    if not scales:
        raise SegSRError('no scales given; pass at least one, e.g. --scales 2 3 4')
    wrong = [scale for scale in scales if not isinstance(scale, int) or isinstance(scale, bool)
             or not 2 <= scale <= side]
    if wrong:
        raise SegSRError(f'scale {wrong[0]} is not possible for {spec.name}: every scale must be a whole number '
                         f'from 2 to {side} (the image side); pass e.g. --scales 2 3 4')
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SegSRError(f'workers must be a whole number of at least 1 (got {workers}); pass e.g. --workers 4')
    if out.exists() and not out.is_dir():
        raise SegSRError(f'output {out} exists and is not a folder; pass another --out')
    existing = next(folder for folder in (out, *out.parents) if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SegSRError(f'output {out} cannot be written ({existing} is not writable); pass another --out')


def prepare_dataset(name: str | DatasetSpec, src: str | os.PathLike, out: str | os.PathLike,
                    scales: tuple[int, ...] = DEFAULT_SCALES, workers: int | None = None, seed: int = SHIPPED_SEED,
                    keep_off_size: bool = False, progress: bool = True) -> dict:
    """Prepare ``out`` from the archive or folder ``src`` and return the manifest.

    Reruns skip every finished file and rewrite nothing that would not change; an interrupted
    run leaves only whole files (and hidden temporary files, removed by the next run once their process is gone).
    """
    spec = name if isinstance(name, DatasetSpec) else get_spec(name)
    src, out = Path(src).resolve(), Path(out)
    check_arguments(spec, out, tuple(scales), workers)
    scales = tuple(sorted(set(scales)))
    images: list[SourceImage] = list_images(src)
    names_by_class: dict[str, list[str]] = defaultdict(list)
    for image in images:
        names_by_class[image.label].append(image.name)
    base_splits = _base_splits(spec, names_by_class, seed)

    _remove_stale_temp_files(out, scales, spec)
    previous = read_manifest(out) or {}
    jobs = [ImageJob(str(src), image.member, str(out), image.name, spec.size, spec.crop, scales, keep_off_size)
            for image in images]
    reused = {job.name: result for job in jobs if (result := _reusable(job, previous)) is not None}
    todo = [job for job in jobs if job.name not in reused]
    results = _run_jobs(todo, workers or os.cpu_count() or 1, spec.name, progress)
    by_name = {**reused, **{result.name: result for result in results}}
    ordered = [by_name[image.name] for image in images]

    prepared = {result.name for result in ordered if result.error is None}
    splits = _write_splits(out, base_splits, prepared, seed)
    manifest = _manifest(spec, src, images, ordered, splits, seed, scales, keep_off_size)
    write_text_if_changed(out / MANIFEST_NAME, json.dumps(manifest, indent=1) + '\n')
    return manifest


def summary_lines(manifest: dict) -> list[str]:
    """What a user needs to read after a run: counts, off-size images, and every file that failed."""
    counts = manifest['counts']
    lines = [f'{manifest["dataset"]}: {counts["images"]} images in {counts["classes"]} classes, '
             f'{counts["off_size"]} off-size ({manifest["off_size_policy"]}), {counts["failed"]} failed']
    lines += [f'  off-size: {item["image"]} was {item["source_size"][1]}x{item["source_size"][0]}, {item["action"]}'
              for item in manifest['off_size']]
    for split_name, split in manifest['splits'].items():
        sizes = '/'.join(str(split['counts'][part]) for part in ('train', 'val', 'test'))
        lines.append(f'  split {split_name}: {sizes} train/val/test ({split["origin"]}), '
                     f'{len(split["missing"])} listed images missing')
    lines += [f'  FAILED: {item["source"]}: {item["error"]}' for item in manifest['failed']]
    return lines
