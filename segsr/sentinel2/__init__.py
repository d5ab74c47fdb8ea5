"""Sentinel-2 products (.SAFE folders and zips) as inputs and dataset sources."""
