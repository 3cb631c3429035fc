"""OpenLM (PyTorch) checkpoints <-> our Flax transformer: the paper's released models run here,
and models trained here run in OpenLM's tooling. ``names`` holds OpenLM's tensor names and shapes,
``convert`` maps state dicts to our parameters and back, ``io`` reads and writes the files."""
