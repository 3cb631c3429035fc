"""The TPU launch spec: one YAML naming the slice, where it lives, what to install and which
training run to start; validated in full before any ``gcloud`` call.

The accelerator table holds what the checks need: the runtime versions Google documents for
each TPU generation (a mismatched image boots a VM on which JAX sees no TPU), how many
hosts a slice has (a multi-host slice needs its outputs on ``gs://``, since each host has its
own disk and a re-created slice starts with empty disks), and its chips (JAX devices) and
their memory (a sweep refuses a run whose model state cannot fit).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

from scaling_jax.config import ConfigError, FieldError, load_yaml
from scaling_jax.train.config import load_train_config


@dataclasses.dataclass(frozen=True)
class Generation:
    """One TPU generation: the ``accelerator_type`` prefix, the allowed sizes (the number after
    the dash), how many of those units one host holds, its runtime versions, how many of those
    units make one chip (one JAX device) and a chip's high-bandwidth memory in GiB."""

    prefix: str
    sizes: tuple[int, ...]
    per_host: int
    runtimes: tuple[str, ...]
    per_chip: int
    hbm_gib: int

    def hosts(self, size: int) -> int:
        return max(1, size // self.per_host)


def _doubling(lo: int, hi: int) -> tuple[int, ...]:
    out, n = [], lo
    while n <= hi:
        out.append(n)
        n *= 2
    return tuple(out)


# v4 and v5p sizes count TensorCores (2 per chip, 4 chips per host); v5e and v6e count chips
# (up to 8 on one host, 4 per host beyond that). Runtime versions: cloud.google.com/tpu/docs/runtimes;
# HBM per chip (cloud.google.com/tpu/docs/system-architecture-tpu-vm): v4 32 GiB, v5p 95 GiB,
# v5e 16 GiB, v6e 32 GiB.
GENERATIONS: dict[str, Generation] = {g.prefix: g for g in (
    Generation("v4", _doubling(8, 4096), 8, ("tpu-ubuntu2204-base", "tpu-vm-v4-base"), 2, 32),
    Generation("v5p", _doubling(8, 8192), 8, ("v2-alpha-tpuv5",), 2, 95),
    Generation("v5litepod", (1, 4, 8, 16, 32, 64, 128, 256), 4, ("v2-alpha-tpuv5-lite",), 1, 16),
    Generation("v6e", (1, 4, 8, 16, 32, 64, 128, 256), 4, ("v2-alpha-tpuv6e",), 1, 32),
)}
_SINGLE_HOST_MAX = {"v5litepod": 8, "v6e": 8}


def parse_accelerator(accelerator_type: str) -> tuple[Generation, int]:
    """``"v5litepod-8"`` → (its Generation, 8); an unknown type is a FieldError listing the known ones."""
    m = re.fullmatch(r"([a-z0-9]+)-(\d+)", accelerator_type)
    gen = GENERATIONS.get(m.group(1)) if m else None
    if gen is None or int(m.group(2)) not in gen.sizes:
        known = ", ".join(f"{g.prefix}-{{{g.sizes[0]}..{g.sizes[-1]}}}" for g in GENERATIONS.values())
        raise FieldError("accelerator_type", f"unknown TPU accelerator type {accelerator_type!r}; known: {known}")
    return gen, int(m.group(2))


def host_count(accelerator_type: str) -> int:
    gen, size = parse_accelerator(accelerator_type)
    if size <= _SINGLE_HOST_MAX.get(gen.prefix, 0):
        return 1
    return gen.hosts(size)


@dataclasses.dataclass(frozen=True)
class Slice:
    """The TPU slice, requested as a queued resource named ``name`` (the node has the same name)."""

    name: str
    project: str
    zone: str
    accelerator_type: str
    runtime_version: str
    provisioning: Literal["spot", "on-demand", "reserved"] = "spot"

    def __post_init__(self):
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", self.name):
            raise FieldError("name", f"{self.name!r} is not a valid TPU name (lower case letters, digits, dashes)")
        gen, _ = parse_accelerator(self.accelerator_type)
        if self.runtime_version not in gen.runtimes:
            raise FieldError("runtime_version", f"{self.runtime_version!r} does not run on "
                             f"{self.accelerator_type}; use one of {list(gen.runtimes)}")

    @property
    def hosts(self) -> int:
        return host_count(self.accelerator_type)

    @property
    def chips(self) -> int:
        """JAX devices on the slice (a v4/v5p chip's two TensorCores are one device)."""
        gen, size = parse_accelerator(self.accelerator_type)
        return max(1, size // gen.per_chip)

    @property
    def chip_bytes(self) -> int:
        """High-bandwidth memory of one chip."""
        return parse_accelerator(self.accelerator_type)[0].hbm_gib * 2**30


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every worker installs: ``pip`` (requirements: JAX for TPU, and gcsfs, through which
    orbax reaches gs://), ``package`` (this package: a ``gs://...whl`` wheel, a
    ``git+https://...@ref`` or a pip requirement) and ``files`` (task files and other inputs,
    ``gs://`` objects copied into the job folder)."""

    pip: tuple[str, ...] = ("jax[tpu]", "gcsfs")
    package: str = "scaling_jax"
    files: tuple[str, ...] = ()

    def __post_init__(self):
        if self.package.startswith("gs://") and not self.package.endswith(".whl"):
            raise FieldError("package", f"{self.package!r}: a gs:// package must be a .whl file")
        for f in self.files:
            if not f.startswith("gs://"):
                raise FieldError("files", f"{f!r}: setup files are copied from gs:// objects")


@dataclasses.dataclass(frozen=True)
class Job:
    """The training run: ``scaling-jax train CONFIG OVERRIDES --out {bucket}/runs/{name}``.
    ``config`` is a local file, copied to every worker; ``max_recreates`` bounds the preemptions
    the watcher survives."""

    name: str
    config: str
    overrides: tuple[str, ...] = ()
    max_recreates: int = 20

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.=]*", self.name):
            raise FieldError("name", f"{self.name!r}: use letters, digits and -_.= only")
        if self.max_recreates < 0:
            raise FieldError("max_recreates", f"must be >= 0, got {self.max_recreates}")
        for o in self.overrides:
            if "=" not in o or any(c in o for c in "'\"\n"):
                raise FieldError("overrides", f"{o!r}: expected key=value without quotes")


@dataclasses.dataclass(frozen=True)
class TpuSpec:
    tpu: Slice
    bucket: str
    job: Job
    setup: Setup = Setup()
    poll_seconds: float = 60.0

    def __post_init__(self):
        if self.tpu.hosts > 1 and not self.bucket.startswith("gs://"):
            raise FieldError("bucket", f"{self.bucket!r}: {self.tpu.accelerator_type} has {self.tpu.hosts} "
                             "hosts, so checkpoints and records must go to a gs:// bucket")
        if not (self.bucket.startswith("gs://") or self.bucket.startswith("/")):
            raise FieldError("bucket", f"{self.bucket!r}: expected gs://bucket[/prefix] or an absolute path")
        if self.poll_seconds < 0:
            raise FieldError("poll_seconds", f"must be >= 0, got {self.poll_seconds}")

    @property
    def root(self) -> str:
        return self.bucket.rstrip("/")

    @property
    def out(self) -> str:
        """The run folder ``train --out`` writes; a re-created slice resumes from it."""
        return f"{self.root}/runs/{self.job.name}"

    @property
    def logs(self) -> str:
        return f"{self.root}/logs/{self.job.name}"


def load_spec(path: str | Path, overrides=()) -> TpuSpec:
    """Read and check a spec, and the train config it names with its overrides (relative paths
    are taken from the current folder, like every other command's)."""
    spec = load_yaml(TpuSpec, path, overrides)
    if not Path(spec.job.config).is_file():
        raise ConfigError(f"{path}: job.config: train config {spec.job.config!r} not found")
    load_train_config(spec.job.config, spec.job.overrides)
    return spec
