"""Backtests of scaling-law recipes: rolling-origin evaluation over compute cuts, and the choice
of a recipe from its backtest alone (recipes.py, cuts.py, fits.py, score.py, select.py,
bands.py, report.py)."""
