import pytest


@pytest.mark.slow
def test_notebook_runs(run_notebook):
    run_notebook("06_cpu_ladder")
