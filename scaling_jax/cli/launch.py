"""``scaling-jax launch tpu create|setup|run|status|logs|stop|delete SPEC [--dry-run]``: train
on a Cloud TPU slice from a launch spec (configs/launch/*.yaml), outputs in its bucket."""

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
    p = subparsers.add_parser("launch", help="launch training on Cloud TPU slices")
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
