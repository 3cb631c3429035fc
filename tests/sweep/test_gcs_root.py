"""A sweep rooted on ``gs://`` (a GCS emulator): run configs, states and collect go through the
path layer; the records collected from the bucket are a testbed that ``fit`` reads."""

import json

import pytest
import yaml

from scaling_jax import paths
from scaling_jax.cli import main
from scaling_jax.sweep.collect import collect
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.sweep.state import mark, read_state
from scaling_jax.testbed import load_testbed
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)

from .conftest import micro_spec, write_spec


@pytest.mark.usefixtures("gcs_emulator")
def test_a_gs_root_holds_configs_states_and_records_that_collect_gathers(tmp_path, capsys):
    root = f"gs://{BUCKET}/sweeps/micro"
    spec = load_spec(write_spec(tmp_path, micro_spec(tmp_path, out=root)))
    runs = expand(spec)
    assert runs[0].out == f"{root}/tiny_d16-2"
    write_run_configs(spec, runs)
    cfg = yaml.safe_load(paths.read_text(f"{runs[0].out}/train.yaml"))
    assert cfg["name"] == "tiny_d16-2" and cfg["budget"]["multiplier"] == 2.0
    assert json.loads(paths.read_text(f"{root}/sweep.json"))["runs"][5]["folder"] == f"{root}/tiny_d32-8"
    assert read_state(runs[0].out).state == "pending"
    paths.write_text(f"{runs[1].out}/checkpoints/20/commit_success.txt", "ok")  # committed, as orbax marks it
    assert read_state(runs[1].out).resume_step == 20
    mark(runs[2].out, "failed", message="boom")
    assert (read_state(runs[2].out).state, read_state(runs[2].out).message) == ("failed", "boom")
    for r in runs:  # records as train writes them, losses on an Eq. 3 surface
        loss = 2.0 + 400 * r.N ** -0.3 + 900 * r.D ** -0.3
        paths.write_json(f"{r.out}/record.json", {"name": r.name, "dataset": r.dataset, "model": r.model,
                                                  "N": r.N, "params_no_embed": r.N - 100, "D": r.D,
                                                  "losses": {"synthetic": loss}, "err_46": 0.5})
    assert read_state(runs[0].out, "synthetic").state == "done"
    assert main(["sweep", "status", str(tmp_path / "sweep.yaml")]) == 0
    assert "6 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out
    written, missing = collect(spec, runs, f"gs://{BUCKET}/testbeds/micro")
    assert missing == [] and len(written) == 7
    written, _ = collect(spec, runs, tmp_path / "local_testbed")
    assert sorted(r.name for r in load_testbed(tmp_path / "local_testbed")) == sorted(r.name for r in runs)
    assert main(["fit", "--runs", f"gs://{BUCKET}/testbeds/micro", "--law", "overtrain", "--val-set", "synthetic",
                 "--bootstrap", "0", "--no-plots", "--out", str(tmp_path / "fit")]) == 0
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["params"]["E"] == pytest.approx(2.0, rel=0.02)
