"""LR degradations (bicubic, Real-ESRGAN high-order, the sensor model), used by datasets and models and importing neither."""
