"""OpenLM import speed: a random OpenLM state dict of a measured size written to a .pt file, then
``import_openlm`` timed end to end and its stages timed apart on the same file (read: torch.load,
memory-mapped, and float32 views; convert: names/shapes checked, transposed, split and stacked, which
is where the file's pages are read; state: our nnx.State; write: the rest of the end-to-end time,
mostly the orbax checkpoint). MB/s is float32 parameter bytes (4·N) per end-to-end second.
The paper's 1.4B (``open_lm_1b``) and 6.9B (``open_lm_7b``) sizes are estimated from the measured
bytes per second, t ≈ 4·N / (bytes/s) (a float32 file of N parameters), and their name/shape
mapping checked abstractly (``jax.eval_shape`` of the conversion against our model's shapes).
Run: ``python benchmarks/bench_openlm.py [--measure d=512_l=8_h=4 ...] [--estimate open_lm_1b open_lm_7b]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from scaling_jax.model.config import load_model_config
from scaling_jax.model.counts import trainable_params
from scaling_jax.model.transformer import Transformer
from scaling_jax.openlm import convert, io, names
from scaling_jax.openlm.transfer import import_openlm


def random_pt(cfg, path: Path) -> int:
    """Write a random float32 OpenLM checkpoint of ``cfg``'s shapes; returns its parameter count."""
    rng = np.random.default_rng(0)
    sd = {k: torch.from_numpy(rng.standard_normal(s, dtype=np.float32) * 0.02)
          for k, s in names.parameter_shapes(cfg).items()}
    sd.update({k: torch.from_numpy(convert.inv_freq(cfg)) for k in names.buffer_shapes(cfg)})
    torch.save({"epoch": 1, "state_dict": sd}, path)
    return sum(int(np.prod(s)) for s in names.parameter_shapes(cfg).values())


def measure(model: str, root: Path) -> dict:
    cfg = load_model_config(model)
    pt = root / f"{model}.pt"
    n = random_pt(cfg, pt)
    t = {}
    t0 = time.perf_counter()
    sd = io.read_state_dict(pt)
    t["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = convert.to_flat(sd, cfg, str(pt))
    t["convert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    convert.to_state(flat, cfg)
    t["state"] = time.perf_counter() - t0
    del sd, flat
    t0 = time.perf_counter()
    import_openlm(pt, model, root / f"{model}-run")
    t["import_openlm"] = time.perf_counter() - t0
    t["write"] = t["import_openlm"] - t["read"] - t["convert"] - t["state"]
    return {"model": model, "N": n, "file_MB": pt.stat().st_size / 1e6, **t,
            "MB_per_s": 4 * n / 1e6 / t["import_openlm"]}


def abstract_check(model: str) -> int:
    """The conversion traced on abstract tensors of ``model``'s OpenLM shapes: every output shape
    equals our model's parameter of that name; returns the parameter count."""
    cfg = load_model_config(model)
    sd = {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in names.parameter_shapes(cfg).items()}
    flat = jax.eval_shape(lambda x: convert.to_flat(x, cfg, model), sd)
    ours = nnx.state(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))), nnx.Param)
    want = {".".join(map(str, p)): tuple(v.shape) for p, v in nnx.to_flat_state(ours)}
    got = {k: tuple(v.shape) for k, v in flat.items()}
    assert got == want, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    n = sum(int(np.prod(s)) for s in got.values())
    assert n == trainable_params(cfg)
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--measure", nargs="+", default=["d=512_l=8_h=4"])
    ap.add_argument("--estimate", nargs="+", default=["open_lm_1b", "open_lm_7b"])
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.measure:
            rows.append(measure(model, Path(tmp)))
    print("| model | N | file MB | read s | convert s | state s | write s (rest) | import_openlm s | MB/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['N']:,} | {r['file_MB']:.0f} | {r['read']:.2f} | {r['convert']:.2f} | "
              f"{r['state']:.2f} | {r['write']:.2f} | {r['import_openlm']:.2f} | {r['MB_per_s']:.0f} |")
    big = max(rows, key=lambda r: r["N"])  # the largest measured size: fixed costs weigh least there
    rate = big["MB_per_s"]
    print(f"\nestimates at {big['model']}'s {rate:.0f} MB/s, t = 4·N / rate; shapes checked with jax.eval_shape:")
    print("| model | N | float32 GB | estimated import s |")
    print("| --- | ---: | ---: | ---: |")
    for model in args.estimate:
        n = abstract_check(model)
        print(f"| {model} | {n:,} | {4 * n / 1e9:.1f} | {4 * n / 1e6 / rate:.0f} |")


if __name__ == "__main__":
    main()
