"""SIGTERM (a preemption, a time limit, a runner stopping its workers) as a flag the training
loop reads at a step boundary, where it checkpoints and returns.

A caller that may be signalled before ``train`` starts (a sweep worker between runs or during a
run's setup, ``scaling-jax train`` while it imports) installs the flag first and hands it to
``train``, so a signal that came early stops the run at its first step boundary instead of being
lost when ``train`` installs a flag of its own. Imports nothing heavy: install it early.
"""

from __future__ import annotations

import signal


class StopFlag:
    """Set by SIGTERM from the moment it is created until :meth:`restore`."""

    def __init__(self):
        self.set = False
        self._old = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.set = True

    def agreed(self) -> bool:
        """Every process stops at the same step: any process's flag stops them all."""
        import jax

        if jax.process_count() == 1:
            return self.set
        import numpy as np
        from jax.experimental import multihost_utils

        return bool(multihost_utils.process_allgather(np.int32(self.set)).any())

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._old)
