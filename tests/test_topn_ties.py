"""Top-N selection and constant text columns: the shortcuts give what the general paths give.

``top_n_weights`` picks by repeated ``argmax`` for small N and by a stable sort otherwise; both must break
ties by column order and never pick a missing score. ``_constant`` writes a repeated text's buffers directly
and must equal ``take`` from the one-word vocabulary, dtype included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest.engine import _constant, _words, symbol_columns
from vnpy_rotation.strategies.momentum import top_n_weights

NAN, INF = np.nan, np.inf

# (scores of one day, top_n, absolute, expected chosen columns)
CASES = [
    ([0.1, 0.3, 0.2, 0.0], 1, True, [1]),
    ([0.1, 0.3, 0.2, 0.0], 2, True, [1, 2]),
    ([0.2, 0.1, 0.2, 0.2], 2, True, [0, 2]),  # ties: the first columns
    ([0.0, -0.0, 0.5, NAN], 3, False, [0, 1, 2]),  # 0.0 and -0.0 tie; NaN never chosen
    ([NAN, 0.4, NAN, NAN], 3, True, [1]),  # fewer finite scores than top_n
    ([NAN, NAN, NAN, NAN], 2, True, []),
    ([INF, 0.1, -INF, 0.2], 2, True, [3, 1]),  # infinities are not scores
    ([-0.1, -0.2, 0.3, 0.1], 3, True, [2, 3]),  # absolute: only positive momentum
    ([-0.1, -0.2, 0.3, 0.1], 3, False, [2, 3, 0]),
    ([0.5, 0.4, 0.3, 0.2], 4, True, [0, 1, 2, 3]),  # the sort path (top_n above the argmax passes)
    ([0.2, 0.2, NAN, 0.2], 4, True, [0, 1, 3]),
]


@pytest.mark.parametrize("scores, top_n, absolute, chosen", CASES)
def test_top_n_weights_table(scores, top_n, absolute, chosen):
    weights = top_n_weights(np.array([scores]), top_n, 0.9, absolute)
    expected = np.zeros((1, len(scores)))
    expected[0, chosen] = 0.9 / top_n
    np.testing.assert_array_equal(weights, expected)


def test_top_n_weights_argmax_equals_sort_on_random_days():
    rng = np.random.default_rng(7)
    scores = np.round(rng.normal(size=(300, 12)), 1)  # rounded: many ties
    scores[rng.random(scores.shape) < 0.2] = np.nan
    for top_n in (1, 2, 3):
        ranked = np.where(np.isfinite(scores), scores, -np.inf)
        chosen = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(chosen, np.argsort(-ranked, axis=1, kind="stable")[:, :top_n], True, axis=1)
        chosen &= np.isfinite(scores) & (scores > 0)
        np.testing.assert_array_equal(top_n_weights(scores, top_n, 1.0, True), np.where(chosen, 1.0 / top_n, 0.0))


@pytest.mark.parametrize("text", ["rebalance", "", "调仓 x"])
@pytest.mark.parametrize("length", [0, 1, 3, 1000])
def test_constant_column_equals_take(text, length):
    column = _constant(text, length)
    taken = _words((text,)).take(np.zeros(length, dtype=np.intp))
    assert type(column) is type(taken) and column.dtype == taken.dtype
    pd.testing.assert_series_equal(pd.Series(column), pd.Series(taken))
    assert list(column) == [text] * length


def test_symbol_columns_equal_an_index_of_the_names():
    for symbols in (("510300.SSE", "159915.SZSE"), ()):
        pd.testing.assert_index_equal(symbol_columns(symbols), pd.Index(list(symbols)), exact=True)
