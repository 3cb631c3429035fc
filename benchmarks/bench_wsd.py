"""WSD trunks and decay branches against separate cosine runs (issue 31): cost, wall time,
equivalence of the losses, Eq. 4's forecasts, and exactness.

    python benchmarks/bench_wsd.py [--spec configs/sweeps/cpu_ladder_wsd.yaml] [--out DIR] [--jobs 1]
                                   [--models ladder_d16_l1,...]

1. Cost: a 5-multiplier sweep (M = 5 ... 80) of one size as branches, over its M = 80 run (``sweep
   plan``'s cost table; C = 6N per token trained); separate runs cost 155/80 = 1.94x.
2. Wall time: the spec's ladder trained as branches (``sweep run --jobs J``) and the same ladder
   as separate cosine runs (its blocks without ``branches``, ``optimizer.schedule: cosine``),
   each with a fresh compilation cache, one after the other on this machine.
3. Equivalence: every (N, M)'s final validation loss both ways, each pair's relative gap and the
   mean; Eq. 4 (``overtrain``, LM) fitted on each ladder's fit runs (the spec's recipe) and its
   forecasts at the recipe's targets, with their relative gap (goal <= 0.5 %).
4. Exactness: one branch (the first of the smallest size) against the separate WSD run of its
   budget, trained here with the same config: metrics rows, losses and parameters bit for bit.

Writes ``summary.json`` into the work folder and prints the tables BENCHMARKS.md quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def cosine_twin(spec_path: Path, out: Path, models: list[str]) -> tuple[Path, Path]:
    """The spec (its models cut to ``models`` if given) as branches, and its twin of separate cosine
    runs: the same blocks without ``branches``, ``optimizer.schedule: cosine``."""
    spec = yaml.safe_load(spec_path.read_text())
    spec["base"] = str((spec_path.parent / spec["base"]).resolve())
    if models:
        spec["grid"] = [{**b, "models": [m for m in b["models"] if m in models]} for b in spec["grid"]]
        spec["grid"] = [b for b in spec["grid"] if b["models"]]
        if spec.get("recipe"):
            rec = spec["recipe"]
            for key in ("loss_fit", "error_fit", "targets"):
                rec[key] = [s for s in rec.get(key) or [] if s["model"] in models]
            if not rec["targets"]:  # a pilot without the targets' model: its last fit run held out instead
                rec["targets"] = rec["loss_fit"][-1:]
                rec["loss_fit"] = rec["loss_fit"][:-1]
                rec["error_fit"] = [s for s in rec["error_fit"] if s not in rec["targets"]]
    wsd = {**spec, "out": str(out / "wsd")}
    cos = {**spec, "name": spec["name"] + "_cosine", "out": str(out / "cosine"),
           "grid": [{k: v for k, v in b.items() if k != "branches"} for b in spec["grid"]],
           "set": {**(spec.get("set") or {}), "optimizer.schedule": "cosine"}}
    paths = out / "wsd.yaml", out / "cosine.yaml"
    for p, s in zip(paths, (wsd, cos)):
        p.write_text(yaml.safe_dump(s, sort_keys=False))
    return paths


def timed_sweep(spec: Path, jobs: int, work: Path, tag: str, *role: str) -> float:
    """``sweep run SPEC --jobs J [--role R]`` in a subprocess with the ladder's own compilation cache
    (fresh at its first call); its wall seconds."""
    env = {**os.environ, "SCALING_JAX_COMPILATION_CACHE": str(work / f"cache_{tag}")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scaling_jax.cli", "sweep", "run", str(spec), "--jobs", str(jobs),
                    *[a for r in role for a in ("--role", r)]], cwd=REPO, env=env, check=True)
    return time.perf_counter() - t0


def losses(runs) -> dict[tuple[str, float], dict]:
    """(model, M) -> the run's record (trunks have none)."""
    out = {}
    for r in runs:
        if r.kind != "trunk":
            rec = json.loads((Path(r.out) / "record.json").read_text())
            out[(r.model, round(r.M, 6))] = {"N": rec["N"], "D": rec["D"], "loss": rec["losses"]["synthetic"],
                                            "name": r.name}
    return out


def eq4_forecasts(spec, runs, recs) -> dict[str, float]:
    """Eq. 4 fitted (LM) on the recipe's loss-fit runs; its forecast at each target, by name."""
    from scaling_jax.laws.fit import fit_law, predict
    from scaling_jax.sweep.spec import recipe_runs

    chosen = recipe_runs(spec, runs)
    fit = [recs[(r.model, round(r.M, 6))] for r in chosen["loss_fit"]]
    N, D = np.array([f["N"] for f in fit], float), np.array([f["D"] for f in fit], float)
    res = fit_law("overtrain", {"C": 6 * N * D, "M": D / N}, np.array([f["loss"] for f in fit]))
    out = {}
    for r in chosen["targets"]:
        t = recs[(r.model, round(r.M, 6))]
        out[t["name"]] = float(predict("overtrain", res.params, C=6 * t["N"] * t["D"], M=t["D"] / t["N"]))
    return out


def five_multiplier_cost() -> dict:
    """The cost table row of one size at M = 5, 10, 20, 40, 80 as branches (the ladder's base config)."""
    from scaling_jax.sweep.spec import expand, load_spec
    from scaling_jax.sweep.trees import cost_table

    with tempfile.TemporaryDirectory() as d:
        p = Path(d, "five.yaml")
        p.write_text(yaml.safe_dump({"name": "five", "base": str(REPO / "configs/train/cpu_ladder.yaml"),
                                     "out": str(Path(d, "runs")),
                                     "grid": [{"models": ["ladder_d32_l1"], "multipliers": [5, 10, 20, 40, 80],
                                               "branches": True}]}))
        [row] = cost_table(expand(load_spec(p)))
    return row


def exactness(runs, work: Path) -> dict:
    """The first branch of the first trunk against the separate WSD run of its budget, trained now."""
    import jax

    from scaling_jax.train import loop
    from scaling_jax.train.lm import load_run

    b = next(r for r in runs if r.kind == "branch")
    cfg = dataclasses.replace(b.config, budget=dataclasses.replace(b.config.budget, branch_of=""))
    sep = work / "separate_wsd"
    loop.train(cfg, sep)

    def rows(d):
        return [(r["step"], r["kind"], r.get("loss"), r.get("grad_norm"), r.get("lr"))
                for r in map(json.loads, Path(d, "metrics.jsonl").read_text().splitlines())]

    pa, pb = load_run(b.out), load_run(sep)
    same_params = all(np.array_equal(np.asarray(x), np.asarray(y))
                      for x, y in zip(jax.tree.leaves(pa.lm.params), jax.tree.leaves(pb.lm.params), strict=True))
    ra, rb = (json.loads(Path(d, "record.json").read_text())["losses"] for d in (b.out, sep))
    return {"branch": b.name, "steps": b.steps, "decay_start": b.start_step, "rows_equal": rows(b.out) == rows(sep),
            "losses_equal": ra == rb, "params_equal": same_params, "loss": ra}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(REPO / "configs" / "sweeps" / "cpu_ladder_wsd.yaml"))
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--models", default="", help="comma-separated: only these models of the spec (a pilot)")
    args = ap.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="bench_wsd_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["SCALING_JAX_COMPILATION_CACHE"] = str(work / "cache_here")

    from scaling_jax.sweep.spec import expand, load_spec
    from scaling_jax.sweep.trees import cost_table

    wsd_path, cos_path = cosine_twin(Path(args.spec), work, [m for m in args.models.split(",") if m])
    five = five_multiplier_cost()
    print(f"cost: one size at M = 5..80 as branches = {five['vs_largest']:.3f}x its M = 80 run "
          f"(separate runs {five['separate_C'] / (five['total_C'] / five['vs_largest']):.3f}x); saving "
          f"{five['saving']:.1%}")

    wsd_spec, cos_spec = load_spec(wsd_path), load_spec(cos_path)
    wsd_runs, cos_runs = expand(wsd_spec), expand(cos_spec)
    ladder = cost_table(wsd_runs)
    fit = {r.out for r in cos_runs if r.role == "fit"}
    fit_trees = {r.trunk for r in wsd_runs if r.role == "fit"}
    load0 = os.getloadavg()[0]
    t_cos = timed_sweep(cos_path, args.jobs, work, "cosine", "fit")  # the ladder: its fit set
    load1 = os.getloadavg()[0]
    t_wsd = timed_sweep(wsd_path, args.jobs, work, "wsd", "fit")
    load2 = os.getloadavg()[0]
    ladder = [t for t in ladder if t["trunk"] in {r.name for r in wsd_runs if r.out in fit_trees}]
    flops = sum(r["total_C"] for r in ladder) / sum(r["separate_C"] for r in ladder)
    print(f"wall: the ladder (the fit set) as cosine runs {t_cos:.1f} s ({len(fit)} runs), as branches "
          f"{t_wsd:.1f} s ({len(ladder)} trunks, {sum(len(t['multipliers']) for t in ladder)} branches): "
          f"{t_wsd / t_cos:.1%} (goal <= 50 %); compute {flops:.1%} of the cosine ladder's; load average "
          f"{load0:.1f} / {load1:.1f} / {load2:.1f} on {os.cpu_count()} cores")
    timed_sweep(cos_path, args.jobs, work, "cosine")  # the targets, both ways (not timed)
    timed_sweep(wsd_path, args.jobs, work, "wsd")

    lw, lc = losses(wsd_runs), losses(cos_runs)
    pairs = []
    print(f"{'model':<16} {'M':>5} {'N':>7} {'cosine':>8} {'branch':>8} {'gap':>7}")
    for key in sorted(lc, key=lambda k: (lc[k]["N"], k[1])):
        gap = lw[key]["loss"] / lc[key]["loss"] - 1
        pairs.append({"model": key[0], "M": key[1], "N": lc[key]["N"], "cosine": lc[key]["loss"],
                      "branch": lw[key]["loss"], "gap": gap})
        print(f"{key[0]:<16} {key[1]:>5g} {lc[key]['N']:>7} {lc[key]['loss']:>8.4f} {lw[key]['loss']:>8.4f} "
              f"{gap:>+7.2%}")
    gaps = np.array([p["gap"] for p in pairs])
    print(f"mean gap {gaps.mean():+.2%}, mean |gap| {np.abs(gaps).mean():.2%}, max |gap| {np.abs(gaps).max():.2%} "
          f"(goal: every |gap| <= 1 %)")

    fw, fc = eq4_forecasts(wsd_spec, wsd_runs, lw), eq4_forecasts(cos_spec, cos_runs, lc)
    measured = {v["name"]: v["loss"] for v in lc.values()}
    measured_w = {v["name"]: v["loss"] for v in lw.values()}
    forecasts = []
    for name in fc:
        forecasts.append({"target": name, "cosine_fit": fc[name], "branch_fit": fw[name],
                          "gap": fw[name] / fc[name] - 1, "measured_cosine": measured[name],
                          "measured_branch": measured_w[name]})
        print(f"Eq. 4 at {name}: cosine-ladder fit {fc[name]:.4f}, branch-ladder fit {fw[name]:.4f} "
              f"({fw[name] / fc[name] - 1:+.2%}, goal within 0.5 %); measured cosine {measured[name]:.4f}, "
              f"branch {measured_w[name]:.4f}")

    exact = exactness(wsd_runs, work)
    print(f"exactness: {exact['branch']} ({exact['steps']} steps, from the trunk's step {exact['decay_start']}) "
          f"against a separate WSD run: rows {exact['rows_equal']}, losses {exact['losses_equal']}, "
          f"parameters {exact['params_equal']}")
    (work / "summary.json").write_text(json.dumps({
        "five_multiplier_cost": five, "ladder_cost": ladder, "wall_cosine_s": t_cos, "wall_branches_s": t_wsd,
        "jobs": args.jobs, "loads": [load0, load1, load2], "pairs": pairs, "forecasts": forecasts,
        "exactness": exact}, indent=1))
    print(f"wrote {work / 'summary.json'}")


if __name__ == "__main__":
    main()
