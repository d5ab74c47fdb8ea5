"""Model files: weights written atomically and read weights-only, the network rebuilt from them, model cards and hub loading."""
