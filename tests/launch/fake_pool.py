"""A fake ``gcloud`` for a pool of queued resources whose workers are local processes.

Every queued resource (``create``/``describe``/``delete`` by name) has its own state, under a
file lock since the pool's threads call ``gcloud`` at once. ``tpu-vm ssh`` runs the command with
bash in the slice's own home folder (``homes/NAME``, emptied on delete: a re-created slice has a
fresh disk) with ``SCALING_JAX_HOST=NAME.INCARNATION`` (each VM a host of its own) in a process
group of its own, recorded so that :meth:`FakePool.preempt` can kill it as a lost VM would be
and ``delete`` kills what still runs. The setup command is not run (it would pip install): it
installs ``~/.local/bin/scaling-jax``, the test's entry point, instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
from pathlib import Path

from tests.launch.fakes import install

REPO = Path(__file__).resolve().parents[2]

FAKE_POOL_GCLOUD = r'''
import contextlib, fcntl, json, os, shutil, signal, subprocess, sys
from pathlib import Path
here = Path(__file__).resolve().parent
argv = sys.argv[1:]
with open(here / "calls.jsonl", "a") as f:
    f.write(json.dumps(argv) + "\n")

@contextlib.contextmanager
def locked():
    with open(here / "state.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = json.loads((here / "state.json").read_text())
        yield s
        (here / "state.json").write_text(json.dumps(s))

def qr(s, name):
    return s["slices"].setdefault(name, {"qr": "ABSENT", "left": 0, "incarnation": 0, "pgid": None})

def kill(pgid):
    with contextlib.suppress(ProcessLookupError, TypeError):
        os.killpg(pgid, signal.SIGKILL)

def done(rc=0, out="", err=""):
    sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)

if argv[:3] == ["compute", "tpus", "queued-resources"]:
    verb, name = argv[3], argv[4]
    with locked() as s:
        q = qr(s, name)
        if verb == "create":
            if q["qr"] != "ABSENT":
                rc, out = 1, "ALREADY_EXISTS"
            else:
                q.update(qr="PROVISIONING", left=s["provisioning_polls"], incarnation=q["incarnation"] + 1)
                s["creates"].append(name); rc, out = 0, ""
        elif verb == "describe":
            if q["qr"] == "PROVISIONING":
                q["left"] -= 1
                if q["left"] < 0:
                    q["qr"] = "ACTIVE"
            rc, out = (1, "NOT_FOUND") if q["qr"] == "ABSENT" else (0, q["qr"] + "\n")
        else:  # delete: the VM and everything on it
            kill(q["pgid"]); q.update(qr="ABSENT", pgid=None); s["deletes"].append(name)
            shutil.rmtree(here / "homes" / name, ignore_errors=True); rc, out = 0, ""
    done(rc, out if rc == 0 else "", out if rc else "")
if argv[:3] == ["compute", "tpus", "tpu-vm"]:
    name = argv[4] if argv[3] == "ssh" else argv[5].split(":")[0]
    with locked() as s:
        q = qr(s, name)
        active, host = q["qr"] == "ACTIVE", f"{name}.{q['incarnation']}"
    if not active:
        done(255, err="ssh: connect to host: Connection refused")
    if argv[3] == "scp":
        done()
    home = here / "homes" / name
    cmd = [a for a in argv if a.startswith("--command=")][0][len("--command="):]
    if ".setup-" in cmd:
        (home / ".local" / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(here / "slice-scaling-jax", home / ".local" / "bin" / "scaling-jax")
        done()
    proc = subprocess.Popen(["bash", "-c", cmd], env={**os.environ, "HOME": str(home), "SCALING_JAX_HOST": host},
                            start_new_session=True)
    with locked() as s:
        qr(s, name)["pgid"] = proc.pid
    rc = proc.wait()
    kill(proc.pid)  # what the job left behind (the log-sync loop's sleep)
    with locked() as s:
        if qr(s, name)["pgid"] == proc.pid:
            qr(s, name)["pgid"] = None
    done(255 if rc < 0 else rc)
if argv[:2] == ["storage", "ls"]:
    done(1, err="ERROR: One or more URLs matched no objects.")
if argv[:2] in (["storage", "cp"], ["storage", "cat"]):
    done()
done(2, err="fake gcloud: unexpected command")
'''

# What setup installs as ``~/.local/bin/scaling-jax`` on a slice: the CLI, with ``PRELUDE`` run first.
ENTRY = ("#!{python}\nimport sys\nsys.path.insert(0, {repo!r})\n{prelude}\n"
         "from scaling_jax.cli import main\nsys.exit(main())\n")


class FakePool:
    def __init__(self, bin_dir: Path, prelude: str = "", provisioning_polls: int = 1):
        self.dir = bin_dir
        install(bin_dir, "gcloud", FAKE_POOL_GCLOUD)
        (bin_dir / "slice-scaling-jax").write_text(ENTRY.format(python=sys.executable, repo=str(REPO),
                                                                prelude=prelude))
        (bin_dir / "slice-scaling-jax").chmod(0o755)
        (bin_dir / "state.json").write_text(json.dumps({"slices": {}, "creates": [], "deletes": [],
                                                        "provisioning_polls": provisioning_polls}))

    @contextlib.contextmanager
    def _locked(self):
        with open(self.dir / "state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            s = json.loads((self.dir / "state.json").read_text())
            yield s
            (self.dir / "state.json").write_text(json.dumps(s))

    @property
    def state(self) -> dict:
        with self._locked() as s:
            return s

    def preempt(self, name: str) -> None:
        """The slice is SUSPENDED and everything on it dies at once (kill -9), as a spot VM's does."""
        with self._locked() as s:
            q = s["slices"][name]
            q["qr"] = "SUSPENDED"
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.killpg(q["pgid"], signal.SIGKILL)

    def kill_worker(self, name: str) -> None:
        """What runs on the slice dies (kill -9) and its ssh drops; the slice stays ACTIVE."""
        with self._locked() as s:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.killpg(s["slices"][name]["pgid"], signal.SIGKILL)

    def kill_all(self) -> None:
        """Kill whatever still runs on any slice (a test's cleanup)."""
        with self._locked() as s:
            for q in s["slices"].values():
                with contextlib.suppress(ProcessLookupError, TypeError):
                    os.killpg(q["pgid"], signal.SIGKILL)

    @property
    def calls(self) -> list[list[str]]:
        path = self.dir / "calls.jsonl"
        return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []
