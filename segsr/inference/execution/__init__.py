"""Running a network on a scene: band groups, tiles and their blending, self-ensembles, ONNX, I/O threads."""
