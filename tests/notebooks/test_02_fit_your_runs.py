import pytest


@pytest.mark.slow
def test_notebook_runs(run_notebook):
    run_notebook("02_fit_your_runs")
