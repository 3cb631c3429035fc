"""Training: typed run config, the AdamW recipe, the sharded step, checkpoints and the loop."""
