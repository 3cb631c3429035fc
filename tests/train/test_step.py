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


@pytest.mark.slow
def test_eight_device_mesh_matches_one_device():
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu",
           "JAX_NUMPY_RANK_PROMOTION": "raise"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["one"]["n_devices"] == 1 and out["eight"]["n_devices"] == 8
    for a, b in zip(out["one"]["losses"] + out["one"]["eval"], out["eight"]["losses"] + out["eight"]["eval"]):
        assert abs(a - b) < 1e-4 * abs(a), out
