"""Checkpoints of other code bases turned into segsr checkpoints."""
