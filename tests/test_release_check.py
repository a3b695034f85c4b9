"""The pre-release gates (pure): each gate fails on its own with its name, value and threshold; the thresholds of a
``release:`` section are validated with file and field; a release freeze blocks."""

import math

import pytest

from vnpy_rotation.canary.release import GATE_NAMES, ReleaseEvidence, ReleaseGates, check_release, failing
from vnpy_rotation.config import validate_section
from vnpy_rotation.errors import InputRejected

GOOD = ReleaseEvidence(sharpe=0.9, max_drawdown=-0.12, lookahead_ok=True, identities_ok=True, walkforward=True,
                       overfit_flagged=False, deflated_sharpe=0.97)
DEFAULTS = ReleaseGates()


def run(evidence=GOOD, complete=True, risk=True, freeze=(), gates=DEFAULTS, **kw):
    return {r.name: r for r in check_release(evidence, complete, risk, freeze, gates, **kw)}


def evidence(**changes) -> ReleaseEvidence:
    return ReleaseEvidence(**{**GOOD.__dict__, **changes})


def test_good_evidence_passes_every_gate_in_order():
    results = check_release(GOOD, True, True, (), DEFAULTS)
    assert tuple(r.name for r in results) == GATE_NAMES
    assert failing(results) == ()


# (case, inputs, failing gate, its value, its threshold)
ALONE = [
    ("config", dict(complete=False, config_problems=("x.yaml: strategy: top_n: must be ≥ 1",)), "config", False,
     "complete and valid"),
    ("risk", dict(risk=False), "risk_thresholds", False, "a ladder or stop configured"),
    ("sharpe", dict(evidence=evidence(sharpe=0.49)), "sharpe", 0.49, 0.5),
    ("sharpe_missing", dict(evidence=evidence(sharpe=math.nan)), "sharpe", None, 0.5),
    ("drawdown", dict(evidence=evidence(max_drawdown=-0.31)), "max_drawdown", -0.31, -0.30),
    ("lookahead", dict(evidence=evidence(lookahead_ok=False, failed_lookahead=("look-ahead after 2020-01-03",))),
     "lookahead", False, "required"),
    ("lookahead_not_run", dict(evidence=evidence(lookahead_ok=None)), "lookahead", None, "required"),
    ("identities", dict(evidence=evidence(identities_ok=False, failed_identities=("cash never negative",))),
     "identities", False, "required"),
    ("overfit", dict(evidence=evidence(overfit_flagged=True)), "walkforward_overfit", True, "not flagged"),
    ("walkforward_required", dict(evidence=evidence(walkforward=False, overfit_flagged=None, deflated_sharpe=None),
                                  gates=ReleaseGates(require_walkforward=True)), "walkforward_overfit", None,
     "required"),
    ("dsr_gated", dict(gates=ReleaseGates(min_deflated_sharpe=0.98)), "deflated_sharpe", 0.97, 0.98),
    ("dsr_gated_missing", dict(evidence=evidence(walkforward=False, overfit_flagged=None, deflated_sharpe=None),
                               gates=ReleaseGates(min_deflated_sharpe=0.95)), "deflated_sharpe", None, 0.95),
    ("freeze", dict(freeze=(("etf_rotation", "major drift for 2 sessions"),)), "release_freeze", True, "no freeze"),
]


@pytest.mark.parametrize("case, inputs, gate, value, threshold", ALONE, ids=[c[0] for c in ALONE])
def test_each_gate_fails_on_its_own(case, inputs, gate, value, threshold):
    results = run(**inputs)
    assert [r.name for r in results.values() if not r.passed] == [gate]
    assert results[gate].value == (pytest.approx(value) if isinstance(value, float) else value)
    assert results[gate].threshold == (pytest.approx(threshold) if isinstance(threshold, float) else threshold)


def test_a_refusal_says_why():
    results = run(complete=False, config_problems=("x.yaml: strategy: top_n: bad",),
                  freeze=(("account", "VaR red zone"),),
                  evidence=evidence(lookahead_ok=False, failed_lookahead=("look-ahead after 2020-01-03",)))
    assert "top_n" in results["config"].reason
    assert "look-ahead after 2020-01-03" in results["lookahead"].reason
    assert "account" in results["release_freeze"].reason and "VaR red zone" in results["release_freeze"].reason


@pytest.mark.parametrize("changes", [dict(sharpe=0.5), dict(max_drawdown=-0.30)], ids=["sharpe", "drawdown"])
def test_thresholds_are_inclusive(changes):
    assert failing(tuple(run(evidence=evidence(**changes)).values())) == ()


@pytest.mark.parametrize("gates, changes", [
    (ReleaseGates(require_lookahead_ok=False), dict(lookahead_ok=False)),
    (ReleaseGates(require_identities_ok=False), dict(identities_ok=False)),
    (ReleaseGates(reject_overfit=False), dict(overfit_flagged=True)),
    (ReleaseGates(min_sharpe=-1.0, max_drawdown=0.5), dict(sharpe=-0.2, max_drawdown=-0.45)),
], ids=["lookahead", "identities", "overfit", "loosened"])
def test_a_gate_turned_off_or_loosened_passes(gates, changes):
    assert failing(tuple(run(evidence=evidence(**changes), gates=gates).values())) == ()


def test_deflated_sharpe_is_reported_but_not_gated_by_default():
    result = run(evidence=evidence(deflated_sharpe=0.1))["deflated_sharpe"]
    assert result.passed and result.value == pytest.approx(0.1) and result.threshold is None


def test_no_walkforward_passes_unless_required():
    results = run(evidence=evidence(walkforward=False, overfit_flagged=None, deflated_sharpe=None))
    assert results["walkforward_overfit"].passed and results["walkforward_overfit"].value is None


@pytest.mark.parametrize("raw, field", [({"max_drawdown": 1.5}, "max_drawdown"), ({"min_sharp": 1}, "min_sharp"),
                                        ({"min_deflated_sharpe": 2}, "min_deflated_sharpe")])
def test_a_bad_release_section_names_file_and_field(raw, field):
    with pytest.raises(InputRejected) as caught:
        validate_section(ReleaseGates, raw, "v.yaml: release")
    assert str(caught.value.problems[0]).startswith(f"v.yaml: release: {field}")


def test_defaults():
    gates = ReleaseGates()
    assert (gates.min_sharpe, gates.max_drawdown, gates.require_lookahead_ok, gates.require_identities_ok,
            gates.reject_overfit, gates.require_walkforward, gates.min_deflated_sharpe) == (
        0.5, 0.30, True, True, True, False, None)
