"""Only committed checkpoint steps count, by one rule (``train.checkpoint``) that agrees with
orbax's own, for every reader: the sweep's run states, ``launch tpu``'s resume decision and the
SLURM script's. Checkpoints written by orbax itself, locally and in a GCS emulator bucket, one
of them unfinished (its commit marker deleted, as a death mid-save leaves it)."""

import json
import os
import subprocess
import uuid
from pathlib import Path

import jax.numpy as jnp
import orbax.checkpoint as ocp
import pytest

from scaling_jax import paths
from scaling_jax.launch.runner import Runner
from scaling_jax.launch.tpu import TpuLauncher
from scaling_jax.launch.tpu_spec import load_spec
from scaling_jax.sweep.state import read_state
from scaling_jax.train.checkpoint import COMMIT_FILE, Checkpoints, committed_steps, steps_in_listing
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)
from tests.launch.fakes import install

from .conftest import REPO
from .faults import delete_object

# `gcloud storage ls URL` answered from the emulator bucket, as gcloud answers: a folder URL
# (ending in /) lists its children, a URL with * matches objects (a * never crosses a /).
LS_GCLOUD = r"""
import re, sys
from scaling_jax import paths
url = sys.argv[3] if sys.argv[1:3] == ["storage", "ls"] else sys.exit(2)
if "*" in url:
    root = url[:url.index("*")].rpartition("/")[0]
    pattern = re.compile(".*".join(re.escape(p) for p in url.split("*")).replace(".*", "[^/]*"))
    found = [u for u in paths.find(root, url.rpartition("/")[2]) if pattern.fullmatch(u)]
else:
    found = [url.rstrip("/") + "/" + n + "/" for n in paths.listdir(url)]
print("\n".join(found)) if found else sys.exit("ERROR: One or more URLs matched no objects.")
"""


def _save(ckpt_dir, *steps):
    c = Checkpoints(ckpt_dir, keep=5, async_save=False)
    for s in steps:
        c.save(s, {"w": jnp.full(3, s)}, None, {"step": s})
    c.close()


def test_listing_rule():
    remote = ["gs://b/r/checkpoints/3/commit_success.txt", "gs://b/r/checkpoints/3/state/commit_success.txt",
              "gs://b/r/checkpoints/6/", "gs://b/r/checkpoints/12/commit_success.txt"]
    assert steps_in_listing(remote, remote=True) == [3, 12]
    assert steps_in_listing(["3", "6.orbax-checkpoint-tmp", "12", "x"], remote=False) == [3, 12]


def test_local_unfinished_step_is_not_a_checkpoint(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    _save(ckpts, 3)
    (ckpts / "6.orbax-checkpoint-tmp" / "state").mkdir(parents=True)  # what a death mid-save leaves locally
    assert committed_steps(ckpts) == ocp.utils.checkpoint_steps(ckpts) == [3]
    assert read_state(tmp_path / "run").resume_step == 3


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_gcs_uncommitted_step_counts_for_no_reader(tmp_path, monkeypatch):
    pytest.importorskip("gcsfs")
    bucket = f"gs://{BUCKET}/{uuid.uuid4().hex}"
    spec_path = tmp_path / "spec.yaml"
    (tmp_path / "train.yaml").write_text("name: x\n")
    spec_path.write_text(json.dumps({
        "tpu": {"name": "sj", "project": "p", "zone": "us-central2-b", "accelerator_type": "v4-8",
                "runtime_version": "tpu-ubuntu2204-base", "provisioning": "spot"},
        "bucket": bucket, "setup": {"package": "gs://b/w.whl"},
        "job": {"name": "run", "config": str(tmp_path / "train.yaml")}}))
    spec = load_spec(spec_path)
    run = spec.out
    ckpts = paths.join(run, "checkpoints")
    _save(ckpts, 3, 6)
    delete_object(paths.join(ckpts, "6", COMMIT_FILE))  # step 6: written, never committed
    assert "6" in paths.listdir(ckpts)

    assert committed_steps(ckpts) == ocp.utils.checkpoint_steps(ckpts) == [3]  # the same as orbax's view
    assert read_state(run).resume_step == 3  # 7cbb090: 6

    bin_dir = tmp_path / "bin"
    install(bin_dir, "gcloud", LS_GCLOUD)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    launcher = TpuLauncher(spec, Runner(echo=lambda line: None))
    assert launcher.saved_steps() == [3]  # 7cbb090: [3, 6]

    # the SLURM script resumes only from a committed step (7cbb090: --resume with step 6 alone)
    install(bin_dir, "srun", "import sys; open(sys.argv[0] + '.args', 'a').write(' '.join(sys.argv[1:]) + '\\n')")
    install(bin_dir, "scontrol", "")

    def srun_args() -> str:
        subprocess.run(["bash", str(REPO / "launch" / "slurm.sbatch"), "c.yaml", run], check=True, timeout=120,
                       capture_output=True, env={**os.environ, "SLURM_RESTART_COUNT": "0", "SLURM_JOB_ID": "1"})
        return Path(f"{bin_dir}/srun.args").read_text().splitlines()[-1]

    assert srun_args().endswith(f"--out {run} --resume")
    delete_object(paths.join(ckpts, "3", COMMIT_FILE))
    assert committed_steps(ckpts) == [] and launcher.saved_steps() == []
    assert srun_args().endswith(f"--out {run}")
    assert read_state(run).resume_step is None


def test_sbatch_local_tmp_folder_is_not_resumed(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "6.orbax-checkpoint-tmp").mkdir(parents=True)  # a death mid-save, locally
    bin_dir = tmp_path / "bin"
    install(bin_dir, "srun", "import sys; open(sys.argv[0] + '.args', 'a').write(' '.join(sys.argv[1:]) + '\\n')")
    install(bin_dir, "scontrol", "")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_RESTART_COUNT": "0",
           "SLURM_JOB_ID": "1"}

    def srun_args() -> str:
        subprocess.run(["bash", str(REPO / "launch" / "slurm.sbatch"), "c.yaml", str(run)], check=True,
                       timeout=60, capture_output=True, env=env)
        return (bin_dir / "srun.args").read_text().splitlines()[-1]

    assert srun_args().endswith(f"--out {run}")
    _save(run / "checkpoints", 3)
    assert srun_args().endswith(f"--out {run} --resume")
