"""Corpora and the input pipeline: tokenizers, TensorStore token arrays, a synthetic
language with a known true loss, and grain iterators that resume exactly."""
