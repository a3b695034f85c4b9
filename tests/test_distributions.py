"""The closed-form distribution functions the exception tests use, against scipy.special."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from vnpy_rotation.risk.distributions import binomial_cdf, chi2_sf, xlog1py, xlogy


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2]), st.floats(0.0, 200.0))
def test_chi2_survival_matches_scipy(dof, x):
    assert chi2_sf(dof, x) == pytest.approx(float(special.chdtrc(dof, x)), rel=1e-12, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2000), st.floats(1e-4, 0.5))
def test_binomial_cdf_matches_scipy(n, p):
    ours = binomial_cdf(n, p)
    theirs = special.bdtr(np.arange(n + 1), n, p)
    assert ours.shape == (n + 1,)
    assert np.allclose(ours, theirs, rtol=1e-10, atol=1e-14)
    assert ours[-1] == pytest.approx(1.0, abs=1e-10)  # the summed terms round off by ~1e-12
    assert (np.diff(ours) >= -1e-15).all()


def test_basel_traffic_light_cumulative_probabilities():
    """Basel Committee (1996), "Supervisory framework for the use of backtesting...", Table 1: 250 days at 99 %,
    cumulative probability 89.22 % at 4 exceptions, 95.88 % at 5, 99.97 % at 9, 99.99 % at 10."""
    cdf = binomial_cdf(250, 0.01)
    assert round(cdf[4] * 100, 2) == 89.22
    assert round(cdf[5] * 100, 2) == 95.88
    assert round(cdf[9] * 100, 2) == 99.97
    assert round(cdf[10] * 100, 2) == 99.99


@given(st.floats(0.0, 1e6), st.floats(1e-12, 1e6))
def test_xlogy_matches_scipy(x, y):
    assert xlogy(x, y) == pytest.approx(float(special.xlogy(x, y)), rel=1e-14, abs=1e-300)
    assert xlogy(0.0, 0.0) == 0.0


@given(st.floats(0.0, 1e6), st.floats(-0.999999, 1e6))
def test_xlog1py_matches_scipy(x, y):
    assert xlog1py(x, y) == pytest.approx(float(special.xlog1py(x, y)), rel=1e-14, abs=1e-300)
    assert xlog1py(0.0, -1.0) == 0.0


@pytest.mark.parametrize("call", [lambda: chi2_sf(3, 1.0), lambda: binomial_cdf(10, 0.0),
                                  lambda: binomial_cdf(-1, 0.5)])
def test_out_of_range_refused(call):
    with pytest.raises(ValueError):
        call()


def test_chi2_at_zero_and_below():
    assert chi2_sf(1, 0.0) == 1.0 and chi2_sf(2, -1.0) == 1.0 and math.isfinite(chi2_sf(1, 1e6))
