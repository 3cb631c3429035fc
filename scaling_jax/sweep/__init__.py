"""Sweeps: a grid of training runs from one spec, run locally or on SLURM, collected into a testbed."""
