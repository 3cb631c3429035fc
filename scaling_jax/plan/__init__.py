"""Planning with posteriors: what to train next, how big, how long, and how sure.

Pure functions over posterior draws of Eq. 4 (E, a, b, η, with fit noise and discrepancy) and,
when chained, Eq. 5 (ε, k, γ). Every figure is a distribution over the draws and every decision
a probability.

``draws`` packs a posterior for compiled kernels and gives P(L ≤ L*) / P(Err ≤ Err*) at any
(C, M); ``allocation`` the compute-optimal split of a budget; ``inference`` the
inference-aware, chance-constrained plan; ``candidates`` bands of user-given runs;
``next_run`` the preposterior ranking of cheap runs; ``report`` plan.json, the table and figures.
"""
