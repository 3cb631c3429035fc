def test_notebook_runs(run_notebook):
    run_notebook("07_downstream_forecast")
