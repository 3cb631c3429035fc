"""Fake ``gcloud``/``sbatch``/``srun`` executables for launcher tests: each records its argv
(one JSON list per line in ``calls.jsonl``) and answers from a JSON state file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAKE_GCLOUD = r'''
import json, sys
from pathlib import Path
here = Path(__file__).resolve().parent
argv = sys.argv[1:]
with open(here / "calls.jsonl", "a") as f:
    f.write(json.dumps(argv) + "\n")
state_file = here / "state.json"
s = json.loads(state_file.read_text())
def save():
    state_file.write_text(json.dumps(s))
def done(rc=0, out="", err=""):
    save(); sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)
if argv[:3] == ["compute", "tpus", "queued-resources"]:
    verb = argv[3]
    if verb == "create":
        if s["qr"] != "ABSENT":
            done(1, err="ALREADY_EXISTS")
        s["qr"] = "PROVISIONING"; s["provisioning_left"] = s["provisioning_polls"]; done()
    if verb == "describe":
        if s["qr"] == "ABSENT":
            done(1, err="ERROR: (gcloud.compute.tpus.queued-resources.describe) NOT_FOUND: not found")
        if s["qr"] == "PROVISIONING":
            if s["provisioning_left"] == 0:
                s["qr"] = "ACTIVE"
            else:
                s["provisioning_left"] -= 1
        if s["qr"] == "ACTIVE" and s["suspend_in"] is not None:  # a preemption the state shows late
            if s["suspend_in"] == 0:
                s["qr"] = "SUSPENDED"; s["suspend_in"] = None
            else:
                s["suspend_in"] -= 1
        done(out=s["qr"] + "\n")
    if verb == "delete":
        s["qr"] = "ABSENT"; s["setup_done"] = False; done()
if argv[:3] == ["compute", "tpus", "tpu-vm"]:
    if s["qr"] != "ACTIVE":
        done(255, err="ssh: connect to host: Connection refused")
    if argv[3] == "scp":
        s["config_copied"] = True; done()
    cmd = [a for a in argv if a.startswith("--command=")][0]
    if "stop_requested" in cmd and "test -e" in cmd:  # the launcher asks whether `launch tpu stop` ran
        done(out="marker\n" if s["stop_marker"] else "", rc=0 if s["stop_marker"] else 1)
    if "scaling-jax train" in cmd:
        s["stop_marker"] = False  # train's command clears it first
        s["train_runs"] += 1
        if s["train_runs"] in s["preempt_on_runs"]:
            s["qr"] = "SUSPENDED"; s["checkpoints"].append(100 * s["train_runs"]); done(255)
        if s["train_runs"] in s["fail_on_runs"]:
            done(1)
        if s["train_runs"] in s["stop_on_runs"]:  # SIGTERM: train checkpoints and exits 0 without a record;
            s["checkpoints"].append(100 * s["train_runs"])  # a preemption's slice reads ACTIVE active_lag
            s["suspend_in"] = s["active_lag"]              # more times (None: it stays ACTIVE: a user's stop,
            s["stop_marker"] = s["active_lag"] is None and not s["unasked_term"]; done()  # or, unasked, maintenance)
        s["record"] = True; done()
    if ".setup-" in cmd:
        s["setup_installs"] += 0 if s["setup_done"] else 1; s["setup_done"] = True
    done()
if argv[:2] == ["storage", "ls"]:
    url = argv[2]
    if url.endswith("/checkpoints/") and s["checkpoints"]:
        done(out="".join(f"{url}{c}/\n" for c in s["checkpoints"]))
    if url.endswith("/checkpoints/*/commit_success.txt") and s["checkpoints"]:  # committed steps (all, here)
        done(out="".join(f"{url[:-len('*/commit_success.txt')]}{c}/commit_success.txt\n" for c in s["checkpoints"]))
    if url.endswith("/record.json") and s["record"]:
        done(out=url + "\n")
    if "/logs/" in url and s["train_runs"]:
        done(out="".join(f"{url}attempt-{i}/\n" for i in range(1, s["train_runs"] + 1)))
    done(1, err="ERROR: One or more URLs matched no objects.")
if argv[:2] == ["storage", "cp"]:
    done()
if argv[:2] == ["storage", "cat"]:
    done(out=f"log of {argv[2]}\n")
done(2, err="fake gcloud: unexpected command")
'''

STATE = {"qr": "ABSENT", "provisioning_polls": 1, "provisioning_left": 0, "train_runs": 0,
         "preempt_on_runs": [], "fail_on_runs": [], "checkpoints": [], "record": False, "setup_done": False,
         "setup_installs": 0, "config_copied": False, "stop_on_runs": [], "active_lag": None, "suspend_in": None,
         "stop_marker": False, "unasked_term": False}


def install(bin_dir: Path, name: str, body: str) -> Path:
    """Write an executable ``name`` into ``bin_dir`` running ``body`` with this Python."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


class FakeGcloud:
    def __init__(self, bin_dir: Path, **state):
        self.dir = bin_dir
        install(bin_dir, "gcloud", FAKE_GCLOUD)
        (bin_dir / "state.json").write_text(json.dumps({**STATE, **state}))

    @property
    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    @property
    def calls(self) -> list[list[str]]:
        path = self.dir / "calls.jsonl"
        return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []

    def steps(self) -> list[str]:
        """The calls in words: create, describe, delete, scp, setup, train[ --resume], ls, ..."""
        out = []
        for argv in self.calls:
            if argv[2] == "queued-resources":
                out.append(argv[3])
            elif argv[2] == "tpu-vm":
                cmd = next((a for a in argv if a.startswith("--command=")), "")
                out.append("scp" if argv[3] == "scp" else "train --resume" if "--resume" in cmd else
                           "train" if "scaling-jax train" in cmd else "setup" if ".setup-" in cmd else "ssh")
            else:
                out.append(" ".join(argv[:2]))
        return out
