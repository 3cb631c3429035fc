"""Runs the argv lists the launchers build: each is echoed (``+ gcloud ...``) to stderr, then
run; with ``dry_run`` it is only printed, and the answers a dry run assumes are given instead.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from typing import Callable, NamedTuple

from scaling_jax.errors import UserError


class CommandFailed(UserError):
    """An external command (gcloud, sbatch) failed; the message holds it and its last output."""


class Result(NamedTuple):
    rc: int
    out: str = ""
    err: str = ""


Answer = Callable[[list[str]], Result]


class Runner:
    def __init__(self, *, dry_run: bool = False, dry_answer: Answer | None = None, echo=None):
        self.dry_run = dry_run
        self.dry_answer = dry_answer or (lambda argv: Result(0))
        self.echo = echo or (lambda line: print(line, file=sys.stdout if dry_run else sys.stderr, flush=True))

    def require(self, program: str) -> None:
        """A missing program is an error before anything runs (a dry run needs none)."""
        if not self.dry_run and shutil.which(program) is None:
            raise UserError(f"{program}: not found on PATH; install it or use --dry-run to see the commands")

    def __call__(self, argv: list[str], *, check: bool = True, capture: bool = False, stdin: str | None = None
                 ) -> Result:
        """Run ``argv`` (``stdin`` its input); return its status (and output if ``capture``);
        ``check`` raises CommandFailed."""
        self.echo(("" if self.dry_run else "+ ") + shlex.join(argv) + (" <<'EOF'\n" + stdin + "EOF" if stdin else ""))
        if self.dry_run:
            return self.dry_answer(argv)
        proc = subprocess.run(argv, text=True, capture_output=capture, input=stdin)
        if check and proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
            raise CommandFailed(f"{shlex.join(argv[:6])} ... exited with status {proc.returncode}"
                                + (f": {tail[0]}" if tail else ""))
        return Result(proc.returncode, proc.stdout or "", proc.stderr or "")
