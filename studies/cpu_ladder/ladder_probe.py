"""Throw-away driver for tuning the CPU ladder specs (issue 11; studies/cpu_ladder/README.md).

Reads a sweep spec in the cpu_ladder.yaml format, trains its runs one after another in this
process (skipping runs whose record.json exists), then fits Eq. 4 on the recipe's loss_fit runs
and Eq. 5 on its error_fit runs and prints predicted vs measured for every run, targets marked.

    PYTHONPATH=. python studies/cpu_ladder/ladder_probe.py configs/sweeps/cpu_ladder.yaml [--out DIR] [--set k=v ...]
        [--only fit|targets] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml


def flat(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not key.endswith(".set"):
            out += flat(v, key + ".")
        else:
            out.append(f"{key}={json.dumps(v) if not isinstance(v, str) else v}")
    return out


def expand(spec: dict) -> list[dict]:
    runs = []
    for seed in spec.get("seeds", [0]):
        for ds, ds_set in spec["datasets"].items():
            for block in spec["grid"]:
                for model in block["models"]:
                    for M in block["multipliers"]:
                        name = spec["run_name"].format(dataset=ds, model=model, M=M, seed=seed)
                        ov = flat(spec.get("set")) + flat(ds_set) + flat(block.get("set"))
                        ov += [f"model.name={model}", f"budget.multiplier={M}", "budget.tokens=null",
                               f"seed={seed}", f"data.name={ds}", f"name={name}"]
                        runs.append({"name": name, "model": model, "M": float(M), "overrides": ov})
    seen = set()
    uniq = []
    for r in runs:
        if r["name"] not in seen:
            seen.add(r["name"])
            uniq.append(r)
    return uniq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--out")
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--only", choices=["fit", "targets"])
    ap.add_argument("--no-train", action="store_true")
    a = ap.parse_args()
    spec_path = Path(a.spec)
    spec = yaml.safe_load(spec_path.read_text())
    base = (spec_path.parent / spec["base"]).resolve()
    root = Path(a.out or spec["out"])
    rec = spec["recipe"]
    key = lambda m, M: (m, float(M))
    fit_keys = {key(x["model"], x["M"]) for x in rec["loss_fit"]}
    err_keys = {key(x["model"], x["M"]) for x in rec.get("error_fit", rec["loss_fit"])}
    tgt_keys = {key(x["model"], x["M"]) for x in rec["targets"]}
    runs = expand(spec)
    if a.only == "fit":
        runs = [r for r in runs if key(r["model"], r["M"]) in fit_keys | err_keys]
    elif a.only == "targets":
        runs = [r for r in runs if key(r["model"], r["M"]) in tgt_keys]

    from scaling_jax.train.config import load_train_config
    from scaling_jax.train.loop import train

    times_path = root / "wall_times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    if not a.no_train:
        for r in runs:
            out = root / r["name"]
            if (out / "record.json").exists():
                continue
            cfg = load_train_config(base, r["overrides"] + ["logging.progress=false", "logging.tensorboard=false"]
                                    + a.set)
            t0 = time.perf_counter()
            train(cfg, out)
            times[r["name"]] = time.perf_counter() - t0
            root.mkdir(parents=True, exist_ok=True)
            times_path.write_text(json.dumps(times, indent=1))
            print(f"trained {r['name']}: {times[r['name']]:.1f} s  load {os.getloadavg()[0]:.2f}", flush=True)

    recs = {}
    for r in expand(spec):
        p = root / r["name"] / "record.json"
        if p.exists():
            j = json.loads(p.read_text())
            recs[key(r["model"], r["M"])] = {
                "name": r["name"], "N": j["N"], "D": j["D"], "L": j["losses"][rec["val_set"]],
                "err": j.get(rec["metric"]), "bayes": j["hyperparameters"].get("bayes_loss", {}).get(rec["val_set"]),
                "t": times.get(r["name"])}
    from scaling_jax.laws.fit import fit_law

    fr = [recs[k] for k in sorted(fit_keys) if k in recs]
    er = [recs[k] for k in sorted(err_keys) if k in recs]
    lf = ef = None
    if len(fr) >= 5:
        C = [6.0 * x["N"] * x["D"] for x in fr]
        M = [x["D"] / x["N"] for x in fr]
        lf = fit_law("overtrain", {"C": C, "M": M}, [x["L"] for x in fr])
        print("Eq.4", {k: round(v, 5) for k, v in lf.params.items()}, "converged", lf.converged,
              "ident", lf.identifiability)
    if len(er) >= 3 and all(x["err"] is not None for x in er):
        ef = fit_law("error", {"L": [x["L"] for x in er]}, [x["err"] for x in er])
        print("Eq.5", {k: round(v, 5) for k, v in ef.params.items()})
    bayes = [x["bayes"] for x in recs.values() if x["bayes"] is not None]
    if bayes:
        print(f"Bayes loss of the val set: {bayes[0]:.5f}")
    print(f"{'run':34s} {'role':6s} {'N':>8s} {'D':>10s} {'C':>9s} {'L':>8s} {'L-bayes':>8s} {'Lpred':>8s} "
          f"{'rel%':>7s} {'err':>6s} {'Epred':>6s} {'abs%':>6s} {'wall_s':>7s}")
    maxC = max([6.0 * x["N"] * x["D"] for x in fr], default=0)
    for k in sorted(recs, key=lambda k: 6 * recs[k]["N"] * recs[k]["D"]):
        x = recs[k]
        role = "target" if k in tgt_keys else "fit" if k in fit_keys else "errfit" if k in err_keys else "other"
        C = 6.0 * x["N"] * x["D"]
        lp = float(lf.predict(C=C, M=x["D"] / x["N"])) if lf else float("nan")
        ep = float(ef.predict(L=x["L"])) if ef else float("nan")
        ep_chain = float(ef.predict(L=lp)) if ef and lf else float("nan")
        err = x["err"] if x["err"] is not None else float("nan")
        gap = x['L'] - (x['bayes'] or 0)
        print(f"{x['name']:34s} {role:6s} {x['N']:8d} {x['D']:10d} {C:9.3g} {x['L']:8.4f} {gap:8.4f} "
              f"{lp:8.4f} {100 * (lp - x['L']) / x['L']:7.2f} {err:6.3f} {ep_chain:6.3f} {100 * (ep_chain - err):6.2f} "
              f"{(x['t'] or float('nan')):7.1f}  C/maxCfit={C / maxC if maxC else 0:.1f} ErrfromLtrue={ep:.3f}")
    tot = sum(v for v in times.values())
    print(f"total wall (trained runs): {tot:.0f} s; fit set: {sum(x['t'] or 0 for x in fr):.0f} s; "
          f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
