"""Downstream evaluation: the paper's in-context suite (LLM-Foundry's rules) and a synthetic suite,
scored by one jit-compiled function over bucketed shapes on any JAX language model."""
