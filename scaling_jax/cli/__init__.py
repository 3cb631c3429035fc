"""The ``scaling-jax`` command: one subcommand per module in this package.

Each module named in ``COMMANDS`` defines ``add_parser(subparsers)``, which registers its
arguments and sets ``func`` to a callable taking the parsed namespace and returning an
exit code. Modules import JAX lazily so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: tuple[str, ...] = ("reproduce", "fit", "backtest", "posterior", "plan", "model_info", "data", "train", "eval",
                             "sweep", "import_openlm", "export_openlm", "launch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling-jax",
        description="Train model families, fit scaling laws, plan the next run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # ``key=value`` overrides may come after options (``train CFG --out X a=1``): argparse
    # stops filling a nargs="*" positional at the first option, so collect the rest here.
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*(args.overrides or []), *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from scaling_jax.cache import enable_compilation_cache
    from scaling_jax.errors import UserError

    enable_compilation_cache()
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        # Bad input ends with one line naming it; anything else is a bug and keeps its traceback.
        print(f"scaling-jax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
