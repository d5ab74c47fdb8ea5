"""Tiled scene inference: checkpoints, tiling, image and GeoTIFF input/output."""
