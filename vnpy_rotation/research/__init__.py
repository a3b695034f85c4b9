"""Research on top of the backtest core: walk-forward optimisation, holdout, overfit and deflated-Sharpe checks.

``windows`` cuts the calendar, ``wf_config`` validates what a run is configured with, ``walkforward`` chooses
parameters on train spans and measures them on the following test spans, ``deflated`` is the deflated
Sharpe ratio, ``wf_report`` writes the files (``python run.py walkforward``).
"""
