"""The train step on an 8-device CPU mesh (data 2 × fsdp 2 × tensor 2, two micro-batches)
agrees with one device and one batch. Run in a subprocess so the device count does not leak
into other tests."""

import json
import os
import subprocess
import sys

import pytest

from tests.train.conftest import REPO

SCRIPT = r"""
import json, jax, numpy as np
from scaling_jax.model.config import load_model_config
from scaling_jax.model.sharding import make_mesh
from scaling_jax.train import optimizer as opt, step as st
from scaling_jax.train.config import OptimizerSection

cfg = load_model_config("tiny_d16", ["seq_len=16", "vocab_size=64"])
o = OptimizerSection(warmup=1)
tokens = np.random.default_rng(0).integers(0, 64, (16, 17), dtype=np.int32)
out = {}
for name, mesh, accum in [("one", make_mesh(devices=jax.devices()[:1]), 1),
                          ("eight", make_mesh(data=2, fsdp=2, tensor=2), 2)]:
    s = st.setup(cfg, opt.optimizer(o, 10), mesh, seed=0, grad_accum=accum)
    with jax.set_mesh(mesh):
        state = s.init()
        losses = []
        for _ in range(3):
            state, m = s.train_step(state, st.global_batch(tokens, s.batch_sharding, 16))
            losses.append(float(m["loss"]))
        batch = st.global_batch(tokens, s.batch_sharding, 16)
        out[name] = {"losses": losses, "n_devices": len(mesh.devices.flat),
                     "eval": st.to_host(s.eval_step(state["params"], batch)).tolist()}
print(json.dumps(out))
"""


def _on_eight_devices(script: str) -> dict:
    """Run ``script`` in a subprocess with 8 CPU devices (rank promotion raising); its last stdout line as JSON."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu", "JAX_NUMPY_RANK_PROMOTION": "raise"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eight_device_mesh_matches_one_device():
    out = _on_eight_devices(SCRIPT)
    assert out["one"]["n_devices"] == 1 and out["eight"]["n_devices"] == 8
    for a, b in zip(out["one"]["losses"] + out["one"]["eval"], out["eight"]["losses"] + out["eight"]["eval"]):
        assert abs(a - b) < 1e-4 * abs(a), out


OPT_SCRIPT = r"""
import json, jax, jax.numpy as jnp, optax
from scaling_jax.model.config import load_model_config
from scaling_jax.model.sharding import make_mesh
from scaling_jax.train import optimizer as opt, step as st
from scaling_jax.train.config import OptimizerSection

cfg = load_model_config("tiny_d16", {"seq_len": 16, "vocab_size": 64, "n_heads": 2})
mesh = make_mesh(data=2, fsdp=2, tensor=2)
s = st.setup(cfg, opt.optimizer(OptimizerSection(warmup=1), 10), mesh, seed=0)
with jax.set_mesh(mesh):
    state = s.init()
params = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(state["params"])}
rows = []
for path, leaf in jax.tree_util.tree_leaves_with_path(state["opt_state"]):
    key = jax.tree_util.keystr(path)
    match = [k for k in params if key.endswith(k)]
    rows.append({"path": key, "ndim": leaf.ndim, "spec": str(leaf.sharding.spec), "match": match,
                 "param_spec": str(params[match[0]].sharding.spec) if len(match) == 1 else None,
                 "same": len(match) == 1 and leaf.sharding == params[match[0]].sharding})

def odd_init(params):
    return {"buffer": jnp.zeros((8, 3)), "count": jnp.zeros((), jnp.int32)}

odd = optax.GradientTransformation(odd_init, lambda u, s, p=None: (u, s))
try:
    st.setup(cfg, odd, mesh, seed=0)
    error = None
except ValueError as e:
    error = str(e)

# The loop finds layouts jit would refuse before it writes anything.
import tempfile, pathlib
from scaling_jax.config import from_dict, merge
from scaling_jax.errors import UserError
from scaling_jax.train import loop
from scaling_jax.train.config import TrainConfig
from tests.train.conftest import TINY
loop_errors = {}
for name, change in [("params", {"mesh": {"data": 1, "tensor": 8}}),
                     ("batch", {"mesh": {"data": 8}, "budget": {"grad_accum": 2}})]:
    out = pathlib.Path(tempfile.mkdtemp()) / "run"
    try:
        loop.train(from_dict(TrainConfig, merge(TINY, change)), out)
    except UserError as e:
        loop_errors[name] = [str(e), out.exists()]
print(json.dumps({"rows": rows, "error": error, "loop_errors": loop_errors}))
"""


def test_optimizer_state_takes_its_parameters_sharding():
    out = _on_eight_devices(OPT_SCRIPT)
    arrays = [r for r in out["rows"] if r["ndim"] > 0]
    assert len(arrays) == 2 * 14  # Adam's mu and nu, one per parameter
    for r in arrays:
        assert len(r["match"]) == 1 and r["same"], r
    assert any("fsdp" in r["spec"] for r in arrays) and any("tensor" in r["spec"] for r in arrays)
    assert all(r["spec"] == "P()" for r in out["rows"] if r["ndim"] == 0) and len(out["rows"]) > len(arrays)
    assert out["error"] and "optimizer state ['buffer'] of shape (8, 3) matches no parameter" in out["error"]
    params_msg, params_written = out["loop_errors"]["params"]
    assert "does not split evenly" in params_msg and "over tensor (8 devices)" in params_msg and not params_written
    batch_msg, batch_written = out["loop_errors"]["batch"]
    assert "budget.global_batch: micro-batches of 4 sequences" in batch_msg and not batch_written
