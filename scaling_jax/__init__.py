"""scaling_jax: train model families, fit scaling laws to them, plan the next run."""

__version__ = "0.1.0"
