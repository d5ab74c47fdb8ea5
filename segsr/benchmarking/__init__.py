"""Measuring speed, memory and training curves of the networks (scripts/benchmark*.py)."""
