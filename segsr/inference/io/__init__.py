"""Inputs and outputs of inference: arrays, images and GeoTIFFs read and written, manifests, scene assembly, reports."""
