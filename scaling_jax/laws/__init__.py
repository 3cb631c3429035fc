"""Scaling laws (``forms``), their fitters (``lm``, ``huber``), bootstrap and diagnostics."""
