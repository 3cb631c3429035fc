def test_notebook_runs(run_notebook):
    run_notebook("03_downstream_eval")
