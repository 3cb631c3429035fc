"""``scaling-jax train ARGS...`` in this process with a real signal delivered at a chosen point;
run as a subprocess by the fault tests (which also import its helpers):

    python tests/train/faults.py SIGNAL POINT -- train CONFIG [key=value ...] --out DIR [--resume]

SIGNAL is KILL or TERM, sent to this process (``os.kill``) when POINT is reached:
``commit:N`` orbax is about to finalize step N's folder (the save is written, its commit
marker or rename not yet: a death mid-save); ``batch:K`` the K-th batch of this attempt is being
placed; ``row:PREFIX`` a metrics row whose kind starts with PREFIX has just been written.
"""

from __future__ import annotations

import os
import signal
import sys


def term_at(k: int, real):
    """``real`` (``loop.global_batch``) sending SIGTERM to this process as the k-th batch is placed:
    for in-process tests, ``monkeypatch.setattr(loop, "global_batch", term_at(k, loop.global_batch))``."""
    calls = [0]

    def counting(*a, **kw):
        calls[0] += 1
        if calls[0] == k:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **kw)

    return counting


def delete_object(path: str) -> None:
    """Delete one object of a ``gs://`` folder (as a save cut short, or an outside hand, leaves it)."""
    import tensorstore as ts

    from scaling_jax import paths

    folder, _, name = path.rpartition("/")
    paths._store(folder).delete_range(ts.KvStore.KeyRange(name, name + "\0")).result()


def _fire(sig: signal.Signals) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), sig)


def install(sig: signal.Signals, point: str) -> None:
    kind, _, arg = point.partition(":")
    if kind == "commit":
        from orbax.checkpoint._src.path import atomicity

        for cls in (atomicity.AtomicRenameTemporaryPath, atomicity.CommitFileTemporaryPath):
            def finalize(self, *a, _real=cls.finalize, **kw):
                if self.get_final().name == arg:
                    _fire(sig)
                return _real(self, *a, **kw)

            cls.finalize = finalize
    elif kind == "batch":
        from scaling_jax.train import loop

        real, calls = loop.global_batch, [0]

        def counting(*a, **kw):
            calls[0] += 1
            if calls[0] == int(arg):
                _fire(sig)
            return real(*a, **kw)

        loop.global_batch = counting
    elif kind == "row":
        from scaling_jax.train.metrics import MetricsLog

        real_write = MetricsLog.write

        def write(self, step, kind_, values):
            real_write(self, step, kind_, values)
            if kind_.startswith(arg):
                _fire(sig)

        MetricsLog.write = write
    else:
        raise SystemExit(f"faults.py: unknown point {point!r}")


if __name__ == "__main__":
    sig_name, point, sep, *rest = sys.argv[1:]
    assert sep == "--", sys.argv
    install(signal.Signals[f"SIG{sig_name}"], point)
    from scaling_jax.cli import main

    sys.exit(main(rest))
