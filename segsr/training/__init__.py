"""Training: the loop (loop.py), where a run resumes from (resume.py) and its experiment folder (experiment.py)."""

from segsr.training.loop import main

__all__ = ['main']
