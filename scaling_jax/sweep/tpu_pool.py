"""``sweep run --runner tpu``: a pool of Cloud TPU queued resources works through a sweep on gs://.

Up to ``--slices`` slices, named ``<launch spec's tpu.name>-<sweep>-<i>``, each driven by one
thread here as ``launch tpu run`` drives one (``launch.tpu.TpuLauncher``: create, wait ACTIVE,
set up once), then running ``sweep worker`` (``sweep.worker``), which claims the sweep's runs from
the bucket one after another. Only the claim needs atomicity (``sweep.claim``); everything else
is the run folders on gs://, so the pool keeps no state of its own and a second ``sweep run``
picks up where the first stopped.

A slice found SUSPENDED/FAILED after its worker's ssh ended is deleted and created again (at
most ``job.max_recreates`` times per slice): its run's lease expires and a worker resumes it from
its checkpoints. A worker that lost a lease, or whose ssh connection dropped, is started again
on its slice (counted the same way); one that fails otherwise on an ACTIVE slice ends that
slice. Slices are deleted once no run is pending or running (``--keep-slices`` keeps them).
Before anything is created, every run is checked against the slice: its corpus must be on
gs:// and its model's state must fit a chip.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from typing import Callable

from scaling_jax import paths
from scaling_jax.errors import UserError
from scaling_jax.launch import gcloud
from scaling_jax.launch.runner import Runner
from scaling_jax.launch.tpu import Preempted, TpuLauncher, dry_answer
from scaling_jax.launch.tpu_spec import TpuSpec
from scaling_jax.sweep import claim, trees
from scaling_jax.sweep.spec import Run
from scaling_jax.sweep.state import STATES, read_state
from scaling_jax.sweep.worker import LEASE_LOST

# A worker's exit on an ACTIVE slice after which it is started again (the new one stops the old
# one first if it still runs there); any other status ends the slice.
RESTART = {LEASE_LOST: "the worker lost a lease", 255: "the ssh connection to the worker dropped"}


@dataclasses.dataclass(frozen=True)
class PoolOptions:
    slices: int = 1
    lease_timeout: float = claim.STALE_SECONDS
    keep_slices: bool = False

    def __post_init__(self):
        if self.slices < 1:
            raise UserError(f"--slices: must be >= 1, got {self.slices}")
        if not (math.isfinite(self.lease_timeout) and self.lease_timeout > 0):
            raise UserError(f"--lease-timeout: must be a positive number of seconds, got {self.lease_timeout}")


def slice_names(prefix: str, sweep: str, n: int) -> list[str]:
    """``n`` queued-resource names for a sweep: ``<prefix>-<sweep>-<i>`` in TPU-name characters
    (lower case, digits, dashes; at most 63), the sweep's part shortened to fit."""
    tail = re.sub(r"[^a-z0-9]+", "-", sweep.lower()).strip("-")
    room = 63 - len(prefix) - len(str(n - 1)) - 2
    tail = tail[:max(room, 0)].strip("-")
    return [f"{prefix}-{tail}-{i}" if tail else f"{prefix}-{i}" for i in range(n)]


def slice_spec(launch: TpuSpec, name: str) -> TpuSpec:
    """The launch spec for one slice of the pool: its own name and its own logs folder."""
    return dataclasses.replace(launch, tpu=dataclasses.replace(launch.tpu, name=name),
                               job=dataclasses.replace(launch.job, name=name))


# --- checks before anything is created --------------------------------------------------------
SHOWN = 10  # problems listed in full; the rest are counted
def state_bytes(run: Run) -> int:
    """Weights, gradients and Adam's two moments of the run's model (``model-info``'s bytes)."""
    from scaling_jax.model.counts import memory_bytes
    from scaling_jax.train.config import model_config

    b = memory_bytes(model_config(run.config))
    return 2 * b["param_bytes"] + b["optimizer_bytes"]


def weight_shards(run: Run, devices: int) -> int | None:
    """Over how many devices the run's mesh splits its weights (fsdp × tensor, a -1 resolved
    against ``devices``); None when the mesh does not fit ``devices``."""
    m = run.config.mesh
    sizes = [m.data, m.fsdp, m.tensor]
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if devices % known:
            return None
        sizes[sizes.index(-1)] = devices // known
    return sizes[1] * sizes[2] if math.prod(sizes) == devices else None


def fit_problems(runs: list[Run], launch: TpuSpec, name: str) -> list[str]:
    """One line per run that cannot train on the slice ``name``: a mesh that does not split its
    chips, or a model state (weights, gradients, Adam moments) above one chip's memory."""
    tpu, out = launch.tpu, []
    for r in runs:
        shards = weight_shards(r, tpu.chips)
        m = r.config.mesh
        if shards is None:
            out.append(f"{r.name}: mesh data={m.data}, fsdp={m.fsdp}, tensor={m.tensor} does not split the "
                       f"{tpu.chips} chips of {tpu.accelerator_type} slice {name}")
            continue
        need = state_bytes(r) / shards
        if need > tpu.chip_bytes:
            out.append(f"{r.name}: {r.model} needs {need / 2**30:.1f} GiB per chip for weights, gradients and "
                       f"Adam moments ({state_bytes(r) / 2**30:.1f} GiB split {shards} ways by mesh fsdp × tensor; "
                       f"scaling-jax model-info), more than the {tpu.chip_bytes // 2**30} GiB of a "
                       f"{tpu.accelerator_type} chip on slice {name}")
    return out


def corpus_problems(runs: list[Run]) -> list[str]:
    """One line per run reading a token corpus that is not on gs:// (a slice has no other disk)."""
    out = []
    for r in runs:
        data = r.config.data
        for field, corpus in [("data.corpus", data.corpus),
                              *((f"data.extra_val[{i}].corpus", v.corpus) for i, v in enumerate(data.extra_val))]:
            if corpus.kind == "tokens" and not paths.is_gcs(corpus.path):
                out.append(f"{r.name}: {field}.path {corpus.path!r} is not on gs://; slices read data from a bucket")
    return out


def check_pool(runs: list[Run], root: str, launch: TpuSpec, names: list[str]) -> None:
    """Every check that can refuse the sweep, before any bucket write or gcloud call."""
    if not paths.is_gcs(root):
        raise UserError(f"out: {root!r}: a TPU sweep keeps its runs in a bucket (out=gs://bucket/prefix)")
    if launch.tpu.hosts > 1:
        raise UserError(f"tpu.accelerator_type: {launch.tpu.accelerator_type} has {launch.tpu.hosts} hosts; "
                        "sweep run --runner tpu drives single-host slices (v5litepod-8, v4-8, v5p-8, v6e-8); "
                        "train a run on a multi-host slice with `launch tpu run`")
    problems = corpus_problems(runs) + fit_problems(runs, launch, names[0])
    if problems:
        more = f"\n  (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise UserError(f"{len(problems)} run(s) cannot train on the pool's slices; nothing was created:\n  "
                        + "\n  ".join(problems[:SHOWN]) + more)


# --- the pool ------------------------------------------------------------------------------
class Pool:
    """Threads, one per slice, each keeping its slice alive and its worker running while the
    sweep has work (``more_work``: a run pending or running)."""

    def __init__(self, launch: TpuSpec, root: str, names: list[str], opts: PoolOptions, run: Runner, *,
                 more_work: Callable[[], bool], log=print, sleep=time.sleep):
        self.launch, self.root, self.names, self.opts = launch, root, names, opts
        self.run, self.more_work, self.log, self.sleep = run, more_work, log, sleep

    def serve(self, name: str) -> str | None:
        """Keep slice ``name`` working until the sweep has none left; a reason if it gave up."""
        spec = slice_spec(self.launch, name)
        tpu = TpuLauncher(spec, self.run, log=self.log, sleep=self.sleep)
        losses, attempt = 0, 0
        try:
            while self.more_work():
                try:
                    tpu.create()
                    tpu.setup()
                    attempt = max([attempt, *tpu.attempts()]) + 1
                    command = gcloud.sweep_worker_command(spec, self.root, self.opts.lease_timeout, attempt)
                    rc = self.run(gcloud.ssh(spec.tpu, command), check=False).rc
                    if rc == 0:  # nothing was left to claim; the loop looks once more
                        self.sleep(spec.poll_seconds)
                        continue
                    st = tpu.settled_state()
                    if st != gcloud.ACTIVE:
                        raise Preempted(st)
                    if rc not in RESTART:
                        return (f"{name}: sweep worker exited with status {rc} on the ACTIVE slice; "
                                f"logs: {spec.logs}/attempt-{attempt}/")
                    losses += 1
                    self.log(f"{name}: {RESTART[rc]}; starting the worker again ({losses} of at most "
                             f"{spec.job.max_recreates})")
                    if losses > spec.job.max_recreates:
                        return f"{name}: lost {losses} times, more than job.max_recreates={spec.job.max_recreates}"
                except Preempted as e:
                    losses += 1
                    if losses > spec.job.max_recreates:
                        return (f"{name}: lost ({e}) {losses} times, more than job.max_recreates="
                                f"{spec.job.max_recreates}; giving up this slice")
                    self.log(f"{name}: {e}; re-creating it ({losses} of at most {spec.job.max_recreates})")
                    tpu.delete()
            return None
        finally:
            if not self.opts.keep_slices:
                tpu.delete()

    def start(self) -> dict[str, str | None]:
        """Serve every slice at once; their outcomes (None: finished cleanly) by name."""
        outcomes: dict[str, str | None] = {}

        def one(name: str) -> None:
            try:
                outcomes[name] = self.serve(name)
            except Exception as e:  # a gcloud failure ends this slice, not the others
                outcomes[name] = f"{name}: {type(e).__name__}: {e}"

        threads = [threading.Thread(target=one, args=(n,), daemon=True, name=n) for n in self.names]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # joined with a timeout so Ctrl-C reaches us
            for t in threads:
                t.join(0.2)
        return outcomes


def states(folders: list[str]) -> dict[str, str]:
    return {f: read_state(f).state for f in folders}


def blocked(folders: list[str], waits: dict[str, tuple[str, int]]) -> list[str]:
    """Pending branches that can never start: their trunk is neither pending nor running and has no
    checkpoint at their decay start (it failed, or stopped short of it)."""
    return [f for f in folders if f in waits and read_state(f).state == "pending"
            and read_state(waits[f][0]).state not in ("pending", "running") and not trees.point_committed(*waits[f])]


def has_work(folders: list[str], waits: dict[str, tuple[str, int]] | None = None) -> bool:
    """Whether some run may still be claimed or is training; a branch its trunk can no longer
    reach is not work (else the slices would start workers with nothing to claim forever)."""
    stuck = set(blocked(folders, waits or {}))
    return any(s in ("pending", "running") and f not in stuck for f, s in states(folders).items())


def print_dry_run(launch: TpuSpec, root: str, runs: list[Run], names: list[str], opts: PoolOptions) -> None:
    """Every gcloud command of the first slice (as a dry ``launch tpu run`` prints them), then the claim loop."""
    print(f"# sweep on up to {len(names)} slice(s) {names[0]}{' .. ' + names[-1] if len(names) > 1 else ''} "
          f"({launch.tpu.accelerator_type}, {launch.tpu.provisioning}); every gcloud command for {names[0]}:")
    more = iter([True])
    Pool(launch, root, names[:1], opts, Runner(dry_run=True, dry_answer=dry_answer()),
         more_work=lambda: next(more, False), sleep=lambda seconds: None).serve(names[0])
    beat = claim.beat_seconds(opts.lease_timeout)
    print(f"# the claim loop of `sweep worker` on each slice, over {root}/sweep.json, largest run first:\n"
          f"#   claim RUN/claim-<k>.json, created only if absent (ifGenerationMatch=0); renew it every {beat:g} s;\n"
          f"#   train, or resume from RUN/checkpoints; release the claim; look again from the top;\n"
          f"#   a claim not renewed for {opts.lease_timeout:g} s (--lease-timeout) is taken over and its run resumed;\n"
          f"#   wait while runs are running elsewhere; exit when no run is pending or running.\n"
          f"# claim order ({len(runs)} runs; model state per chip of {launch.tpu.chip_bytes // 2**30} GiB):")
    for i, r in enumerate(sorted(runs, key=lambda r: (-r.C, r.name)), 1):
        per = state_bytes(r) / (weight_shards(r, launch.tpu.chips) or 1)
        print(f"#   {i:>3}. {r.name:<40} C={r.C:.3g}  {per / 2**30:.2f} GiB")
    print(f"# then every slice is deleted{' (not: --keep-slices)' if opts.keep_slices else ''}")


def run_pool(launch: TpuSpec, root: str, runs: list[Run], opts: PoolOptions, names: list[str]) -> int:
    """Work through ``runs`` (their folders written under ``root``) on slices ``names``; 0 when all are done."""
    folders = [r.out for r in runs]
    left = states(folders)
    todo = sum(s != "done" for s in left.values())
    print(f"sweep {paths.name(root)}: {todo} of {len(runs)} runs to do on up to {len(names)} "
          f"{launch.tpu.accelerator_type} slice(s) {', '.join(names)}", flush=True)
    waits = trees.waits(root)
    pool = Pool(launch, root, names, opts, Runner(), more_work=lambda: has_work(folders, waits))
    try:
        outcomes = pool.start()
    except KeyboardInterrupt:
        print(f"interrupted: slices {', '.join(names)} are left as they are; `sweep run` again takes them "
              "over (a worker still on one is stopped first); `scaling-jax launch tpu delete LAUNCH_SPEC "
              "tpu.name=NAME` deletes one", flush=True)
        return 130
    final = states(folders)
    print("sweep: " + ", ".join(f"{sum(s == k for s in final.values())} {k}" for k in STATES), flush=True)
    for problem in filter(None, outcomes.values()):
        print(f"slice: {problem}", flush=True)
    for f, s in final.items():
        if s == "failed":
            st = read_state(f)
            print(f"FAILED {f}: {st.message[:300]} (log {st.log})", flush=True)
    for f in blocked(folders, waits):
        print(f"NOT STARTED {f}: its trunk {waits[f][0]} has no checkpoint at step {waits[f][1]} and is not "
              "training (see its state); `sweep run` again once the trunk is fixed", flush=True)
    return 0 if all(s == "done" for s in final.values()) else 1
