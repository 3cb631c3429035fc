"""``scaling-jax train CONFIG [key=value ...] --out DIR [--resume [--allow-config-change]]``."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model for a token budget; write DIR/record.json")
    p.add_argument("config", help="YAML train config (configs/train/*.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. budget.multiplier=40")
    p.add_argument("--out", required=True, help="run folder, local or gs://bucket/prefix: record.json, metrics.jsonl, "
                   "tensorboard/, checkpoints/")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue even though training fields (model, data, seed, optimizer, "
                        "budget) differ from the checkpoint's config")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="start from this checkpoint's parameters (a run folder, checkpoints/ or step folder, "
                        "e.g. an import-openlm output) with a fresh optimizer at step 0")
    p.add_argument("--coordinator", help="multi-host: coordinator host:port (else from the environment)")
    p.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    p.add_argument("--process-id", type=int, help="multi-host: this process's id")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling_jax.train.stop import StopFlag

    stop = StopFlag()  # first: a SIGTERM during the imports and setup below stops the run at its first step
    from scaling_jax.errors import UserError
    from scaling_jax.train import distributed
    from scaling_jax.train.config import load_train_config

    if args.allow_config_change and not args.resume:
        raise UserError("--allow-config-change applies to --resume only")
    cfg = load_train_config(args.config, args.overrides)
    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    from scaling_jax.train.loop import NonFiniteLoss, train

    if cfg.budget.branches:
        return _trunk(cfg, args, stop)
    try:
        outcome = train(cfg, args.out, resume=args.resume, init_from=args.init_from,
                        allow_config_change=args.allow_config_change, stop=stop)
    except NonFiniteLoss as e:
        print(f"scaling-jax train: {e}", file=sys.stderr)
        return 1
    if distributed.is_writer():
        if outcome.stopped_early:
            print(f"stopped by SIGTERM at step {outcome.step}; " + ("checkpoint saved, continue with --resume"
                  if outcome.step else "nothing trained or saved yet: start it again"))
        else:
            print(f"done: {outcome.step} steps; losses {dict(outcome.record.losses)}; "
                  f"record {args.out}/record.json")
    return 0


def _trunk(cfg, args, stop) -> int:
    """A WSD trunk (``budget.branches``): the trunk, then each branch in ``--out/branches/``."""
    from scaling_jax.errors import UserError
    from scaling_jax.train import distributed
    from scaling_jax.train.branches import train_tree
    from scaling_jax.train.loop import NonFiniteLoss

    if args.init_from:
        raise UserError("--init-from starts one run from a checkpoint; a trunk with budget.branches starts fresh")
    try:
        done = train_tree(cfg, args.out, resume=args.resume, allow_config_change=args.allow_config_change, stop=stop)
    except NonFiniteLoss as e:
        print(f"scaling-jax train: {e}", file=sys.stderr)
        return 1
    if distributed.is_writer():
        for name, o in done:
            if o is None:
                print(f"{name}: done before (record.json); not retrained")
            elif o.stopped_early:
                print(f"{name}: stopped by SIGTERM at step {o.step}; continue with --resume")
            elif o.record is None:
                print(f"{name}: trained to step {o.step} (every branch's decay start); {args.out}/trunk.json")
            else:
                print(f"{name}: done, {o.step} steps; losses {dict(o.record.losses)}")
    return 0
