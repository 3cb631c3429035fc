"""``scaling-jax sweep plan|run|status|collect SPEC``: a grid of training runs from one spec.

``plan`` prints the runs (N, D, M, C, FLOPs, estimated time) and checks the spec; ``run``
trains the unfinished ones locally, as a SLURM job array or on a pool of Cloud TPU slices;
``status`` tabulates them;
``collect`` gathers their records into a testbed folder for ``fit``/``reproduce --recipe``.
``run-one RUN_DIR`` trains one run folder (what the runners call).
"""

from __future__ import annotations

import json
import sys
import time


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="plan, run, watch and collect a grid of training runs")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def spec_parser(name: str, help: str):
        q = verbs.add_parser(name, help=help)
        q.add_argument("spec", help="sweep spec YAML (configs/sweeps/*.yaml)")
        q.add_argument("overrides", nargs="*", metavar="key=value", help="spec overrides, e.g. out=/tmp/ladder")
        return q

    q = spec_parser("plan", "print the runs with N, D, M, C = 6ND, FLOPs and estimated wall time")
    q.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    q.add_argument("--probe", type=int, default=0, metavar="STEPS",
                   help="time STEPS optimizer steps of each model here for the estimate (default: the spec's "
                        "throughput table only)")
    q.set_defaults(func=plan)
    q = spec_parser("run", "train every unfinished run (idempotent: done runs are skipped, stopped ones resume)")
    q.add_argument("--runner", choices=("local", "slurm", "tpu"), default="local")
    q.add_argument("--jobs", type=int, default=0, help="local: runs at once (default: one per GPU, else cores / 2)")
    q.add_argument("--role", choices=("fit", "target", "other"), action="append",
                   help="only runs of this role (repeatable), e.g. --role fit to train the fit set first")
    q.add_argument("--dry-run", action="store_true", help="print what would run (slurm: write the script, no sbatch)")
    q.add_argument("--partition", default="", help="slurm: partition")
    q.add_argument("--account", default="", help="slurm: account")
    q.add_argument("--time", default="24:00:00", help="slurm: time limit per run")
    q.add_argument("--gpus-per-task", type=int, default=1, help="slurm: GPUs per run (0: CPU only)")
    q.add_argument("--cpus-per-task", type=int, default=8, help="slurm: CPU cores per run")
    q.add_argument("--max-parallel", type=int, default=0, help="slurm: array tasks running at once (0: no cap)")
    q.add_argument("--launch", default="", metavar="LAUNCH_SPEC",
                   help="tpu: launch spec naming the slice, bucket and setup (configs/launch/*.yaml)")
    q.add_argument("--slices", type=int, default=1, help="tpu: queued resources kept alive at once")
    q.add_argument("--lease-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="tpu: a run whose lease is not renewed for this long is taken over and resumed")
    q.add_argument("--keep-slices", action="store_true", help="tpu: keep the slices when no run is left")
    q.set_defaults(func=run)
    q = spec_parser("status", "done / running / failed / pending per run, with final loss and error")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=status)
    q = spec_parser("collect", "gather finished records into a testbed folder (and the spec's recipe)")
    q.add_argument("--out", default=None, help="testbed folder (default: the sweep's out + '_testbed')")
    q.set_defaults(func=collect)
    q = verbs.add_parser("run-one", help="train one run folder of a sweep (what the runners call)")
    q.add_argument("run_dir")
    q.set_defaults(func=run_one)
    q = verbs.add_parser("worker", help="train the run folders named on stdin (RUN_DIR<TAB>LOG per line), "
                                        "one after another (what the local runner starts per slot); with --root, "
                                        "claim and train a sweep's runs (what each TPU slice runs)")
    q.add_argument("--root", default="", help="claim the runs listed in ROOT/sweep.json, largest first")
    q.add_argument("--slice", default="", help="--root: the slice this worker runs on (recorded in each lease)")
    q.add_argument("--lease-timeout", type=float, default=300.0, metavar="SECONDS")
    q.add_argument("--log", default="", help="--root: where this worker's output is kept (recorded in each lease)")
    q.add_argument("--pid-file", default="", help="--root: stop the worker recorded here first, then record this one")
    q.set_defaults(func=worker)


def _load(args):
    from scaling_jax.config import parse_overrides
    from scaling_jax.sweep.spec import expand, load_spec

    spec = load_spec(args.spec, parse_overrides(args.overrides or []))
    return spec, expand(spec)


def _human(x: float) -> str:
    for unit, scale in (("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}m" if s < 7200 else f"{s / 3600:.1f}h"


def plan(args) -> int:
    from scaling_jax.sweep import estimate

    spec, runs = _load(args)
    if args.json:
        print(json.dumps([r.row() for r in runs], indent=1))
        return 0
    tps = estimate.throughputs(runs, spec.throughput, args.probe)
    print(f"sweep {spec.name}: {len(runs)} runs -> {spec.out}")
    print(f"{'name':<36} {'role':<6} {'N':>8} {'D':>8} {'M':>6} {'C=6ND':>8} {'FLOPs':>8} {'steps':>7} {'est':>6}")
    total_c = total_f = 0.0
    total_s: float | None = 0.0
    for r in runs:
        sec = estimate.seconds(r, tps)
        flops = estimate.exact_flops(r)
        total_c, total_f = total_c + (r.C if r.kind != "trunk" else 0.0), total_f + flops  # C: the runs' own
        total_s = None if (sec is None or total_s is None) else total_s + sec
        print(f"{r.name:<36} {r.role:<6} {_human(r.N):>8} {_human(r.D):>8} {r.M:>6.4g} {_human(r.C):>8} "
              f"{_human(flops):>8} {r.steps - r.start_step:>7} {_duration(sec):>6}")
    print(f"{'total':<36} {'':<6} {'':>8} {'':>8} {'':>6} {_human(total_c):>8} {_human(total_f):>8} "
          f"{sum(r.steps - r.start_step for r in runs):>7} {_duration(total_s):>6}")
    if total_s is None:
        print("(est: give `throughput:` tokens/s per model in the spec, or --probe STEPS to measure here)")
    _print_trees(runs)
    return 0


def _print_trees(runs) -> None:
    """Each WSD trunk's cost against its budgets as separate runs (a branch's FLOPs and steps
    above are its decay alone; C = 6ND is the run's own, as the laws see it)."""
    from scaling_jax.sweep.trees import cost_table

    rows = cost_table(runs)
    if not rows:
        return
    print("\nbranches against separate runs (C = 6N x the tokens each trains):")
    print(f"{'trunk':<36} {'M':<18} {'trunk C':>8} {'decays C':>8} {'total C':>8} {'separate':>8} "
          f"{'/largest':>8} {'saving':>7}")
    for t in rows:
        Ms = ",".join(f"{m:.3g}" for m in t["multipliers"])
        print(f"{t['trunk']:<36} {Ms:<18} {_human(t['trunk_C']):>8} {_human(t['decays_C']):>8} "
              f"{_human(t['total_C']):>8} {_human(t['separate_C']):>8} {t['vs_largest']:>7.2f}x {t['saving']:>7.1%}")
    total, separate = sum(t["total_C"] for t in rows), sum(t["separate_C"] for t in rows)
    print(f"{'all trunks':<36} {'':<18} {'':>8} {'':>8} {_human(total):>8} {_human(separate):>8} {'':>8} "
          f"{1 - total / separate:>7.1%}")


def run(args) -> int:
    from scaling_jax.sweep.folders import write_run_configs
    from scaling_jax.sweep.state import read_state

    spec, runs = _load(args)
    if args.role:  # and the trunks their branches start from
        from scaling_jax.sweep.trees import with_trunks

        runs = with_trunks([r for r in runs if r.role in args.role], runs)
    if args.runner == "tpu":
        return run_tpu(args, spec, runs)
    root = write_run_configs(spec, runs)
    if args.runner == "slurm" or args.dry_run:  # the local runner reads the states itself
        todo = [r for r in runs if read_state(r.out).state != "done"]
    if args.runner == "slurm":
        from scaling_jax.sweep.slurm import SlurmOptions, script_root, submit_trees

        opts = SlurmOptions(partition=args.partition, time=args.time, gpus_per_task=args.gpus_per_task,
                            cpus_per_task=args.cpus_per_task, max_parallel=args.max_parallel, account=args.account)
        for i, (script, job, n) in enumerate(submit_trees(script_root(root), todo, opts, dry_run=args.dry_run)):
            if args.dry_run:
                print(script.read_text())
                print(f"# dry run: would submit `sbatch --parsable {script}` ({n} array tasks)")
            elif i == 0:
                print(f"submitted job array {job}: {n} runs ({len(runs) - len(todo)} done already); "
                      f"script {script}; watch with `scaling-jax sweep status {args.spec}`")
            else:
                print(f"submitted job array {job}: {n} branches, after their trunk's task; script {script}")
        return 0
    from scaling_jax.sweep.local import default_jobs, failures, log_tail, run_local

    if args.dry_run:
        for r in todo:
            print(f"would train {r.name} ({r.role}, {r.steps} steps) in {r.out}")
        print(f"# dry run: {len(todo)} to train, {len(runs) - len(todo)} done already")
        return 0
    outcomes = run_local(runs, args.jobs or default_jobs())
    counts = {a: sum(o.action == a for o in outcomes) for a in dict.fromkeys(o.action for o in outcomes)}
    print("sweep " + spec.name + ": " + ", ".join(f"{n} {a}" for a, n in counts.items()))
    bad = failures(outcomes)
    for o in bad:
        print(f"FAILED {o.name} (exit {o.rc}); log {o.log}:\n{log_tail(o.log)}", file=sys.stderr)
    return 1 if bad or any(o.action in ("stopped", "not started") for o in outcomes) else 0


def run_tpu(args, spec, runs) -> int:
    """``sweep run --runner tpu``: every check first, then (unless --dry-run) the pool."""
    from scaling_jax.errors import UserError
    from scaling_jax.launch.runner import Runner
    from scaling_jax.launch.tpu_spec import load_spec as load_launch
    from scaling_jax.sweep import tpu_pool
    from scaling_jax.sweep.folders import write_run_configs

    if not args.launch:
        raise UserError("--runner tpu needs --launch LAUNCH_SPEC (configs/launch/*.yaml)")
    launch = load_launch(args.launch)
    opts = tpu_pool.PoolOptions(slices=args.slices, lease_timeout=args.lease_timeout, keep_slices=args.keep_slices)
    names = tpu_pool.slice_names(launch.tpu.name, spec.name, opts.slices)
    tpu_pool.check_pool(runs, spec.out, launch, names)
    if args.dry_run:
        tpu_pool.print_dry_run(launch, spec.out, runs, names, opts)
        return 0
    Runner().require("gcloud")
    write_run_configs(spec, runs)
    return tpu_pool.run_pool(launch, spec.out, runs, opts, names)


def _since(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "?"


def _last_step(run_dir: str) -> int | None:
    """The step of the last row in the run's ``metrics.jsonl`` (a gs:// run uploads it every minute)."""
    from scaling_jax import paths

    try:
        lines = paths.read_text(paths.join(run_dir, "metrics.jsonl")).splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _running_note(owner: dict | None, step: int | None, resume_step: int | None) -> str:
    """Where and since when a running run trains, and how far it got."""
    if owner is None:
        return ""
    where = f"on {owner['slice']}" if owner.get("slice") else f"on {owner.get('host')} pid {owner.get('pid')}"
    ckpt = f", checkpoint {resume_step}" if resume_step is not None else ""
    return f"{where} since {_since(owner.get('started'))}, step {step if step is not None else '-'}{ckpt}"


def status(args) -> int:
    from scaling_jax.sweep.claim import live_owner
    from scaling_jax.sweep.state import STATES, read_state

    spec, runs = _load(args)
    val = spec.recipe.val_set if spec.recipe else ""
    rows = [(r, read_state(r.out, val)) for r in runs]
    running = {r.name: (live_owner(r.out), _last_step(r.out)) for r, s in rows if s.state == "running"}
    if args.json:
        print(json.dumps([{**r.row(), "state": s.state, "loss": s.loss, "error": s.error, "log": s.log,
                           "resume_step": s.resume_step, "message": s.message,
                           **({"owner": running[r.name][0], "step": running[r.name][1]} if r.name in running else {})}
                          for r, s in rows], indent=1))
        return 0
    print(f"{'name':<36} {'role':<6} {'state':<8} {'loss':>8} {'err_46':>7}  note")
    for r, s in rows:
        note = s.message[:60] + f" (log {s.log})" if s.state == "failed" else \
            f"resumes from step {s.resume_step}" if s.state == "pending" and s.resume_step else \
            _running_note(*running[r.name], s.resume_step) if s.state == "running" else ""
        loss = f"{s.loss:.4f}" if s.loss is not None else "-"
        err = f"{s.error:.4f}" if s.error is not None else "-"
        print(f"{r.name:<36} {r.role:<6} {s.state:<8} {loss:>8} {err:>7}  {note}")
    print(", ".join(f"{sum(s.state == k for _, s in rows)} {k}" for k in STATES))
    return 0


def collect(args) -> int:
    from scaling_jax.sweep.collect import collect as gather
    from scaling_jax.sweep.collect import default_dest

    spec, runs = _load(args)
    dest = args.out or default_dest(spec)
    written, missing = gather(spec, runs, dest)
    print(f"collected {len(written) - (spec.recipe is not None)} records into {dest}"
          + (f" with recipe {spec.recipe.name!r}" if spec.recipe else ""))
    if missing:
        print(f"not finished ({len(missing)}): {', '.join(missing)}", file=sys.stderr)
    if spec.recipe:
        print(f"next: scaling-jax reproduce --testbed {dest} --recipe {spec.recipe.name}")
    return 0


def run_one(args) -> int:
    from scaling_jax.train.stop import StopFlag

    stop = StopFlag()  # first: a SIGTERM (scancel, B:TERM@120) during imports, claim or restore still stops it
    from scaling_jax.sweep import single

    single._stop = stop
    return single.run_one(args.run_dir)


def worker(args) -> int:
    if args.root:
        from scaling_jax.sweep.worker import main as claim_loop

        return claim_loop(args.root, slice_name=args.slice, lease_timeout=args.lease_timeout, log=args.log,
                          pid_file=args.pid_file)
    from scaling_jax.sweep.single import serve

    return serve()
