"""The bucketed, batched scorer against a plain unbatched forward pass of the same model."""

import jax
import numpy as np
import pytest
from flax import nnx

from scaling_jax.eval.batching import buckets, plan
from scaling_jax.eval.prompts import Encoded
from scaling_jax.eval.score import Scorer


@pytest.fixture(scope="module")
def random_lm():
    from tests.eval.conftest import random_transformer

    return random_transformer(3, seq_len=80, vocab_size=64)


LENGTHS = (5, 33, 80)  # few distinct lengths: the reference forward compiles once per length


def _items(seed=0, n=23):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        rows = int(rng.integers(1, 5))
        toks, starts = [], []
        for _ in range(rows):
            L = int(rng.choice(LENGTHS))
            s = int(rng.integers(1, L))
            toks.append(tuple(int(t) for t in rng.integers(0, 64, L)))
            starts.append(s)
        out.append(Encoded(tuple(toks), tuple(starts)))
    return out


@nnx.jit
def _forward(model, x):
    return jax.nn.log_softmax(model(x), -1)


def _reference(model, enc):
    """Sum of continuation log-probs, greedy-all-correct, from one unbatched forward per row."""
    out = []
    for toks, s in zip(enc.tokens, enc.start):
        x = np.asarray(toks)[None]
        logp = np.asarray(_forward(model, x[:, :-1]))[0]
        tgt = x[0, 1:]
        lp = logp[np.arange(len(tgt)), tgt][s - 1:].sum()
        ok = bool((logp.argmax(-1) == tgt)[s - 1:].all())
        out.append((lp, ok))
    return out


@pytest.mark.parametrize("tokens_per_batch,smallest", [(256, 32), (4096, 80)])
def test_batched_scores_match_unbatched_forward(random_lm, tokens_per_batch, smallest):
    lm, model = random_lm
    items = _items()
    scorer = Scorer(lm)
    got = {}
    n_batches = 0
    for batch in plan(items, lm.max_seq_len, tokens_per_batch=tokens_per_batch, smallest_bucket=smallest):
        n_batches += 1
        lp, ok, _ = scorer(batch)
        for b, (i, r) in enumerate(batch.rows):
            got[i, r] = (lp[b], ok[b])
    for i, enc in enumerate(items):
        for r, (ref_lp, ref_ok) in enumerate(_reference(model, enc)):
            np.testing.assert_allclose(got[i, r][0], ref_lp, rtol=2e-5, atol=2e-4)
            assert got[i, r][1] == ref_ok
    assert scorer.compiles <= len(buckets(lm.max_seq_len, smallest))  # at most one compile per bucket
    assert n_batches >= 1


def test_every_row_of_an_item_is_in_one_batch(random_lm):
    lm, _ = random_lm
    seen = {}
    for k, batch in enumerate(plan(_items(1, 40), lm.max_seq_len, tokens_per_batch=200, smallest_bucket=8)):
        for i, _ in batch.rows:
            assert seen.setdefault(i, k) == k


MESH_SCRIPT = """
import dataclasses, json, jax
from tests.eval.conftest import random_transformer
from scaling_jax.data.synthetic import SyntheticConfig
from scaling_jax.eval.suite import run_suite
from scaling_jax.eval.synthetic_tasks import synthetic_suite
from scaling_jax.model.sharding import batch_sharding, make_mesh
lm, _ = random_transformer(0, seq_len=32, vocab_size=64)
specs = synthetic_suite(SyntheticConfig(vocab_size=64, n_sources=8, successors=4), 30)
one = run_suite(lm, None, specs)
mesh = make_mesh(data=2, fsdp=2)
params = jax.device_put(lm.params, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
four = run_suite(dataclasses.replace(lm, mesh=mesh, batch_sharding=batch_sharding(mesh), params=params), None, specs)
diff = max(abs(a - b) for x, y in zip(one.examples, four.examples) for a, b in zip(x["logprobs"], y["logprobs"]))
print(json.dumps({"diff": diff, "same": one.accuracies == four.accuracies}))
"""


def test_batches_split_over_the_mesh_data_axes():
    """Four CPU devices (data=2 × fsdp=2, in a subprocess): the same scores as one device."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", MESH_SCRIPT], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["same"] and res["diff"] < 1e-4
