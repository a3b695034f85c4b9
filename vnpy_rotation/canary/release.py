"""Pre-release checks: may a strategy version enter a canary? Pure: no vnpy, no database.

:func:`check_release` turns a version's stored evidence (backtest metrics, look-ahead and identity checks, the
walk-forward summary), whether its configuration still validates, whether risk thresholds are set and the
risk engine's active release freezes into one :class:`GateResult` per gate. Every gate is reported, passed or
not, so a refusal names each failing gate with its value and threshold.

Thresholds are a :class:`ReleaseGates` (the ``release:`` section of the version's config YAML, else the
defaults). The deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014) is always
reported and gated only when ``min_deflated_sharpe`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from ..config import Frozen

GateValue = float | bool | str | None


class ReleaseGates(Frozen):
    """The release thresholds (fractions: 0.30 = 30 %); the ``release:`` section of a version's config."""

    min_sharpe: float = Field(default=0.5, allow_inf_nan=False)
    max_drawdown: float = Field(default=0.30, gt=0, le=1)  # the deepest loss from a peak allowed
    require_lookahead_ok: bool = True
    require_identities_ok: bool = True
    reject_overfit: bool = True  # a walk-forward whose overfit check is flagged fails
    require_walkforward: bool = False  # a version without a walk-forward summary fails
    min_deflated_sharpe: float | None = Field(default=None, ge=0, le=1)  # None: reported, not gated


@dataclass(frozen=True)
class ReleaseEvidence:
    """What a version's evidence says, as the gates read it (None: not measured)."""

    sharpe: float | None
    max_drawdown: float | None  # negative fraction, as ``metrics.json`` has it
    lookahead_ok: bool | None
    identities_ok: bool | None
    walkforward: bool = False  # a walk-forward summary is attached
    overfit_flagged: bool | None = None  # the walk-forward's overfit verdict (None: not evaluated)
    deflated_sharpe: float | None = None  # the walk-forward's DSR (a probability)
    failed_lookahead: tuple[str, ...] = ()  # names of the look-ahead checks that failed
    failed_identities: tuple[str, ...] = ()  # names of the accounting identities that failed


@dataclass(frozen=True)
class GateResult:
    name: str
    value: GateValue
    threshold: GateValue
    passed: bool
    reason: str


GATE_NAMES = ("config", "risk_thresholds", "sharpe", "max_drawdown", "lookahead", "identities",
              "walkforward_overfit", "deflated_sharpe", "release_freeze")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _check(name: str, required: bool, ok: bool | None, failed: Sequence[str]) -> GateResult:
    threshold = "required" if required else "not required"
    if ok:
        return GateResult(name, True, threshold, True, "all checks passed")
    why = "not run" if ok is None else "failed: " + ("; ".join(failed) or "see the version's checks")
    return GateResult(name, ok, threshold, not required, why if required else f"{why} (not required)")


def check_release(evidence: ReleaseEvidence, settings_complete: bool, risk_thresholds_set: bool,
                  freeze: Sequence[tuple[str, str]], gates: ReleaseGates, *,
                  config_problems: Sequence[str] = (), risk_detail: str = "") -> tuple[GateResult, ...]:
    """Every gate, in :data:`GATE_NAMES` order; the version may be released when all have ``passed``.

    ``settings_complete``: the stored strategy settings and backtest config still validate (``config_problems``
    says what does not); ``risk_thresholds_set``: a drawdown ladder or stop rule is configured (``risk_detail``
    lists them); ``freeze``: the active ``release_freeze`` flags as (scope, reason).
    """
    results = [GateResult("config", settings_complete, "complete and valid", settings_complete,
                          "settings and backtest config validate" if settings_complete
                          else "; ".join(config_problems) or "the configuration does not validate"),
               GateResult("risk_thresholds", risk_thresholds_set, "a ladder or stop configured", risk_thresholds_set,
                          risk_detail or ("configured" if risk_thresholds_set
                                          else "no drawdown ladder or stop rule is configured (backtest.risk)"))]

    sharpe = _finite(evidence.sharpe)
    results.append(GateResult("sharpe", sharpe, gates.min_sharpe, sharpe is not None and sharpe >= gates.min_sharpe,
                              "no Sharpe ratio measured" if sharpe is None else
                              f"Sharpe {sharpe:.3f} {'≥' if sharpe >= gates.min_sharpe else '<'} {gates.min_sharpe}"))

    drawdown = _finite(evidence.max_drawdown)
    floor = -gates.max_drawdown
    results.append(GateResult("max_drawdown", drawdown, floor, drawdown is not None and drawdown >= floor,
                              "no drawdown measured" if drawdown is None else
                              f"max drawdown {drawdown:.2%} {'within' if drawdown >= floor else 'beyond'} "
                              f"{floor:.2%}"))

    results.append(_check("lookahead", gates.require_lookahead_ok, evidence.lookahead_ok, evidence.failed_lookahead))
    results.append(_check("identities", gates.require_identities_ok, evidence.identities_ok,
                          evidence.failed_identities))

    flagged = evidence.overfit_flagged
    if not evidence.walkforward:
        results.append(GateResult("walkforward_overfit", None, "required" if gates.require_walkforward else
                                  "not required", not gates.require_walkforward,
                                  "no walk-forward summary attached (version create --from-walkforward DIR)"))
    else:
        rejected = gates.reject_overfit and flagged is True
        missing = gates.require_walkforward and flagged is None
        verdict = {True: "flagged: the holdout's return is far from the walk-forward tests'",
                   False: "not flagged", None: "not evaluated (no holdout)"}[flagged]
        results.append(GateResult("walkforward_overfit", flagged, "not flagged" if gates.reject_overfit
                                  else "reported", not (rejected or missing), verdict))

    dsr = _finite(evidence.deflated_sharpe)
    floor_dsr = gates.min_deflated_sharpe
    if floor_dsr is None:
        results.append(GateResult("deflated_sharpe", dsr, None, True, "reported only (release.min_deflated_sharpe "
                                  "not set)" if dsr is not None else "not measured (no walk-forward attached)"))
    else:
        results.append(GateResult("deflated_sharpe", dsr, floor_dsr, dsr is not None and dsr >= floor_dsr,
                                  "no deflated Sharpe ratio (attach a walk-forward)" if dsr is None else
                                  f"DSR {dsr:.3f} {'≥' if dsr >= floor_dsr else '<'} {floor_dsr}"))

    frozen = "; ".join(f"{scope}: {reason}" for scope, reason in freeze)
    results.append(GateResult("release_freeze", len(freeze) > 0, "no freeze", not freeze,
                              f"release frozen by the risk engine ({frozen})" if freeze else "no release freeze"))
    return tuple(results)


def failing(results: Sequence[GateResult]) -> tuple[GateResult, ...]:
    """The gates that did not pass."""
    return tuple(r for r in results if not r.passed)
