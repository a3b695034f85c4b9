"""The ETF rotation template's pure steps: pools, schedule, universe, scores, selection, weights, constraints."""
