"""Planning an inference run: which process takes which input or band of a scene, and whether it fits the budget."""
