"""``scaling-jax launch tpu create|setup|run|status|logs|stop|delete SPEC [--dry-run]``: train
on a Cloud TPU slice from a launch spec (configs/launch/*.yaml), outputs in its bucket.
``scaling-jax launch slurm CONFIG --out OUT --nodes N``: a multi-node SLURM training job."""

from __future__ import annotations

TPU_ACTIONS = {
    "create": "create the queued resource and wait until it is ACTIVE",
    "setup": "install jax[tpu], this package and the setup files on every worker (idempotent)",
    "run": "create, set up and train; re-create and resume after each preemption until done",
    "status": "print the queued resource's state",
    "logs": "print the newest attempt's logs from every worker",
    "stop": "SIGTERM the training processes (they checkpoint and exit)",
    "delete": "delete the queued resource and its slice",
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("launch", help="launch training on Cloud TPU slices or a SLURM cluster")
    sub = p.add_subparsers(dest="launch_target", metavar="TARGET", required=True)
    tpu = sub.add_parser("tpu", help="a Cloud TPU VM slice through gcloud queued resources")
    tpu.add_argument("action", choices=list(TPU_ACTIONS),
                     help="; ".join(f"{k}: {v}" for k, v in TPU_ACTIONS.items()))
    tpu.add_argument("spec", help="launch spec YAML (configs/launch/*.yaml)")
    tpu.add_argument("overrides", nargs="*", metavar="key=value", help="spec overrides, e.g. job.name=d576-m40")
    tpu.add_argument("--dry-run", action="store_true", help="print every gcloud command instead of running it")
    tpu.add_argument("--delete-when-done", action="store_true",
                     help="run: delete the slice after the record is written")
    tpu.set_defaults(func=run_tpu)
    add_slurm_parser(sub)


def run_tpu(args) -> int:
    from scaling_jax.launch.runner import Runner
    from scaling_jax.launch.tpu import TpuLauncher, dry_answer
    from scaling_jax.launch.tpu_spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    launcher = TpuLauncher(spec, Runner(dry_run=args.dry_run, dry_answer=dry_answer()))
    action = args.action
    if action == "create":
        launcher.create()
    elif action == "setup":
        launcher.setup()
    elif action == "run":
        launcher.watch(delete_when_done=args.delete_when_done)
    elif action == "status":
        print(launcher.state())
    elif action == "logs":
        print(launcher.logs(), end="")
    elif action == "stop":
        launcher.stop()
    elif action == "delete":
        launcher.delete()
    return 0


def add_slurm_parser(sub) -> None:
    from scaling_jax.launch.slurm import SlurmJob

    d = SlurmJob()
    p = sub.add_parser("slurm", help="a multi-node SLURM job: one task per node with all its GPUs, "
                                     "requeued on preemption")
    p.add_argument("config", help="YAML train config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="train config overrides")
    p.add_argument("--out", required=True, help="run folder on a shared filesystem or gs://bucket/prefix")
    p.add_argument("--nodes", type=int, default=d.nodes)
    p.add_argument("--gpus-per-node", type=int, default=d.gpus_per_node)
    p.add_argument("--cpus-per-task", type=int, default=d.cpus_per_task)
    p.add_argument("--time", default=d.time, help="time limit per allocation, e.g. 24:00:00")
    p.add_argument("--partition", default=d.partition)
    p.add_argument("--account", default=d.account)
    p.add_argument("--name", default=d.name, help="job name")
    p.add_argument("--max-requeues", type=int, default=d.max_requeues)
    p.add_argument("--dry-run", action="store_true", help="print the sbatch command and script; submit nothing")
    p.set_defaults(func=run_slurm)


def run_slurm(args) -> int:
    from scaling_jax.config import ConfigError, FieldError
    from scaling_jax.launch import slurm
    from scaling_jax.launch.runner import Runner
    from scaling_jax.train.config import load_train_config

    try:
        job = slurm.SlurmJob(nodes=args.nodes, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                             time=args.time, partition=args.partition, account=args.account, name=args.name,
                             max_requeues=args.max_requeues)
    except FieldError as e:
        raise ConfigError(f"--{e.field.replace('_', '-')}: {e.reason}") from None
    load_train_config(args.config, args.overrides)
    run = Runner(dry_run=args.dry_run)
    run.require("sbatch")
    r = run(slurm.sbatch_argv(), stdin=slurm.script(job, args.config, args.out, args.overrides), capture=True)
    if not args.dry_run:
        print(f"submitted job {r.out.strip()}: {job.nodes} node(s) × {job.gpus_per_node} GPUs, out {args.out}")
    return 0
