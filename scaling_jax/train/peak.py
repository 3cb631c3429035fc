"""Dense bf16 peak FLOP/s of one device, the denominator of MFU: the one table of accelerators.

Peaks from the vendors' data sheets, without structured sparsity (NVIDIA quotes 2× that): H100
SXM 989.4 TFLOP/s, H100 PCIe 756, H200 (SXM) 989.4, A100 (SXM and PCIe) 312; Google Cloud TPU
v4 275 per chip, v5e 197, v5p 459, v6e (Trillium) 918. A JAX device is one GPU or one TPU chip
(a v4 or v5p chip's two TensorCores are one device). Kinds are matched on ``device_kind`` as JAX
reports it ("NVIDIA H100 80GB HBM3", "TPU v5 lite", ...). Any other kind (the CPU, an H100 NVL,
...) has no peak here: MFU is then null unless ``logging.peak_flops`` names one.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Accelerator:
    name: str
    pattern: str  # a regular expression searched in device_kind, case-insensitive
    peak_flops: float  # dense bf16 FLOP/s of one device


ACCELERATORS = (
    Accelerator("H100 PCIe", r"H100 PCIe", 756e12),
    Accelerator("H100 SXM", r"H100 (SXM|\d+GB HBM3$)", 989.4e12),
    Accelerator("H200", r"H200(?!.*NVL)", 989.4e12),
    Accelerator("A100", r"A100", 312e12),
    Accelerator("TPU v4", r"^TPU v4$", 275e12),
    Accelerator("TPU v5e", r"^TPU v5( lite|e)$", 197e12),
    Accelerator("TPU v5p", r"^TPU v5p?$", 459e12),
    Accelerator("TPU v6e", r"^TPU v6( lite|e)$", 918e12),
)


def lookup(device_kind: str) -> Accelerator | None:
    """The table's row for a JAX ``device_kind``, or None."""
    return next((a for a in ACCELERATORS if re.search(a.pattern, device_kind, re.IGNORECASE)), None)


def peak_flops(device_kind: str, override: float | None = None) -> float | None:
    """Dense bf16 FLOP/s of one device of ``device_kind``: ``override`` (``logging.peak_flops``) if
    given, else the table's, else None."""
    if override is not None:
        return float(override)
    acc = lookup(device_kind)
    return None if acc is None else acc.peak_flops


def unknown_note(device_kind: str) -> str:
    """The one-time note a run prints when it cannot report MFU."""
    return (f"mfu: no dense bf16 peak known for device kind {device_kind!r} (known: "
            f"{', '.join(a.name for a in ACCELERATORS)}); metrics carry mfu: null. "
            "Set logging.peak_flops (FLOP/s per device) to report it")
