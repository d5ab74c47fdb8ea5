"""open_clip models for semantic guidance: loading from a tag or file, LoRA adapters, the tiny test model."""
