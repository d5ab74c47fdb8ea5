"""Tiled scene inference by job: io (inputs and outputs), planning (ranks, work, budgets), execution (tiles)."""
