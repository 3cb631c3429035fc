"""Testbeds of trained runs: the paper's release or this project's own records."""

from scaling_jax.testbed.load import Testbed, TestbedError, load_testbed
from scaling_jax.testbed.schema import RunRecord
from scaling_jax.testbed.tasks import TASKS_17

__all__ = ["Testbed", "TestbedError", "RunRecord", "TASKS_17", "load_testbed"]
