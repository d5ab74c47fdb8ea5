"""Preparing the remote-sensing SR datasets: HR/LR folders, split lists and a manifest."""

from segsr.data.prepare.pipeline import prepare_dataset, summary_lines
from segsr.data.prepare.specs import DATASETS, DatasetSpec, SplitRule, get_spec

__all__ = ['DATASETS', 'DatasetSpec', 'SplitRule', 'get_spec', 'prepare_dataset', 'summary_lines']
