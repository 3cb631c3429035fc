"""The accelerator table MFU is reported against, keyed on JAX's device_kind strings."""

import pytest

from scaling_jax.train import peak


@pytest.mark.parametrize("kind, name, tflops", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.4),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756),
    ("NVIDIA H200", "H200", 989.4),
    ("NVIDIA A100-SXM4-80GB", "A100", 312),
    ("NVIDIA A100-PCIE-40GB", "A100", 312),
    ("TPU v4", "TPU v4", 275),
    ("TPU v5 lite", "TPU v5e", 197),
    ("TPU v5e", "TPU v5e", 197),
    ("TPU v5", "TPU v5p", 459),
    ("TPU v5p", "TPU v5p", 459),
    ("TPU v6 lite", "TPU v6e", 918),
])
def test_known_kinds(kind, name, tflops):
    assert peak.lookup(kind).name == name
    assert peak.peak_flops(kind) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("kind", ["cpu", "NVIDIA H100 NVL", "NVIDIA H200 NVL", "TPU v4 lite",
                                  "NVIDIA GeForce RTX 4090"])
def test_unknown_kinds_have_no_peak_unless_given(kind):
    assert peak.peak_flops(kind) is None
    assert peak.peak_flops(kind, override=1e12) == 1e12
    note = peak.unknown_note(kind)
    assert repr(kind) in note and "logging.peak_flops" in note and "H100 SXM" in note


def test_override_beats_the_table():
    assert peak.peak_flops("NVIDIA H100 80GB HBM3", override=5e14) == 5e14


@pytest.mark.parametrize("override, message", [
    ("logging.peak_flops=0", "logging.peak_flops: must be a finite number > 0"),
    ("data.device_prefetch=-1", "data.device_prefetch: must be an integer >= 0"),
])
def test_speed_settings_are_checked_by_name(override, message):
    from scaling_jax.config import ConfigError
    from scaling_jax.train.config import load_train_config
    from tests.train.conftest import REPO

    with pytest.raises(ConfigError, match=message):
        load_train_config(REPO / "configs" / "train" / "cpu_smoke.yaml", [override])
