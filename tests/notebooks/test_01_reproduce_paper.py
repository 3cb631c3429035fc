def test_notebook_runs(run_notebook):
    run_notebook("01_reproduce_paper")
