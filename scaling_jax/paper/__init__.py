"""The paper's workflows (Gadre et al. 2024) on a testbed: its fitting recipe (``recipe``),
the reproduction of its fits, predictions and figures (``reproduce``, ``plots``), and the
check of Bayesian bands on its held-out models (``posterior_check``, ``posterior``,
``posterior_plots``). Built on ``laws`` and ``testbed``; only the CLI imports from here."""
