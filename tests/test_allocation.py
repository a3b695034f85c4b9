"""Capital allocation: two accounts, three strategies; the rules, the schedule, the record and the sizing cap."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnpy_rotation.allocation import (
    AccountState,
    AllocationDecision,
    SizedOrder,
    Snapshot,
    allocate,
    allocation_config,
    canary_split,
    cap_to_allocation,
    due,
    read_allocation_config,
    review,
)
from vnpy_rotation.canary.config import DEFAULT_STAGES
from vnpy_rotation.canary.machine import CanaryState, Status
from vnpy_rotation.errors import InputRejected

ACCOUNTS = [{"id": "A", "gateway": "XT", "kind": "xt"}, {"id": "B", "gateway": "REPLAY", "kind": "replay"}]
MON = datetime(2024, 1, 8, 16, 0)  # a Monday after the close


def config(rule, strategies, **extra):
    return allocation_config({"accounts": ACCOUNTS, "strategies": strategies, "rule": rule, **extra}, "test")


def snap(a=1_000_000.0, b=500_000.0, returns=None):
    return Snapshot({"A": AccountState(a, a / 2), "B": AccountState(b, b)}, returns or {})


def series(values, end=date(2024, 1, 5)):
    """Daily returns ending on ``end``, one calendar day apart (the rules only order them)."""
    return tuple((end - timedelta(days=len(values) - 1 - k), v) for k, v in enumerate(values))


def amounts(decision):
    return {x.strategy: x.amount for x in decision.lines}


# ---- the rules: scenario table (equity A 1,000,000 and B 500,000 unless stated) -----------------------------
S1, S2 = [0.01, -0.01, 0.01, -0.01], [0.02, -0.02, 0.02, -0.02]  # sample sd 0.011547 and 0.023094 (2x)
S4 = [0.04, -0.04, 0.04, -0.04]  # 4x
FIXED = [{"name": "s1", "account": "A", "amount": 600_000}, {"name": "s2", "account": "A", "amount": 300_000},
         {"name": "s3", "account": "B", "amount": 200_000}]
WEIGHTS = [{"name": "s1", "account": "A", "weight": 0.5}, {"name": "s2", "account": "A", "weight": 0.3},
           {"name": "s3", "account": "B", "weight": 0.8}]
RP = [{"name": "s1", "account": "A"}, {"name": "s2", "account": "A"}, {"name": "s3", "account": "B"}]
RETURNS = {"s1": series(S1), "s2": series(S2), "s3": series(S4)}

CASES = [
    # name, rule, strategies, extra config, snapshot, expected amounts
    ("fixed", "fixed", FIXED, {}, snap(), {"s1": 600_000, "s2": 300_000, "s3": 200_000}),
    ("fixed, A cannot cover: scaled by 600/900", "fixed", FIXED, {}, snap(a=600_000),
     {"s1": 400_000, "s2": 200_000, "s3": 200_000}),
    ("fixed, reserve 10 % leaves 450,000 in A: scaled by 1/2", "fixed", FIXED, {"reserve": 0.1}, snap(a=500_000),
     {"s1": 300_000, "s2": 150_000, "s3": 200_000}),
    ("weights", "weights", WEIGHTS, {}, snap(), {"s1": 500_000, "s2": 300_000, "s3": 400_000}),
    ("risk parity: 1/vol 2:1 in A, alone in B", "risk_parity", RP, {"lookback": 4}, snap(returns=RETURNS),
     {"s1": 666_666.66, "s2": 333_333.33, "s3": 500_000}),
    ("risk parity, cap 0.6 on s1", "risk_parity", [{**RP[0], "cap": 0.6}, *RP[1:]], {"lookback": 4},
     snap(returns=RETURNS), {"s1": 600_000, "s2": 400_000, "s3": 500_000}),
    ("risk parity, floor 0.4 on s2", "risk_parity", [RP[0], {**RP[1], "floor": 0.4}, RP[2]], {"lookback": 4},
     snap(returns=RETURNS), {"s1": 600_000, "s2": 400_000, "s3": 500_000}),
    ("risk parity, cap 0.8 on s3 alone in B: B not fully allocated", "risk_parity", [*RP[:2], {**RP[2], "cap": 0.8}],
     {"lookback": 4}, snap(returns=RETURNS), {"s1": 666_666.66, "s2": 333_333.33, "s3": 400_000}),
    ("risk parity, s2 has 2 of 4 returns: the others' mean vol, equal shares", "risk_parity", RP, {"lookback": 4},
     snap(returns={"s1": series(S1), "s2": series(S2[:2]), "s3": series(S4)}),
     {"s1": 500_000, "s2": 500_000, "s3": 500_000}),
    ("risk parity, a return dated after now is not seen", "risk_parity", RP, {"lookback": 4},
     snap(returns={**RETURNS, "s1": series(S1) + ((date(2024, 1, 9), 0.5),)}),
     {"s1": 666_666.66, "s2": 333_333.33, "s3": 500_000}),
    ("insufficient equity: B has none", "weights", WEIGHTS, {}, snap(b=0.0), {"s1": 500_000, "s2": 300_000, "s3": 0}),
    ("B not reported by the broker", "weights", WEIGHTS, {}, Snapshot({"A": AccountState(1e6, 1e6)}),
     {"s1": 500_000, "s2": 300_000, "s3": 0}),
]


@pytest.mark.parametrize("name,rule,strategies,extra,snapshot,expected", CASES, ids=[c[0] for c in CASES])
def test_allocation_rules(name, rule, strategies, extra, snapshot, expected):
    decision = allocate(config(rule, strategies, **extra), snapshot, MON)
    assert amounts(decision) == pytest.approx(expected, abs=0.005)
    for account in decision.accounts:
        mine = [x.amount for x in decision.lines if x.account == account.account]
        assert sum(mine) == pytest.approx(account.allocated) and account.allocated <= account.equity


def test_three_strategies_in_one_account_risk_parity_with_a_cap():
    strategies = [{"name": n, "account": "A", **b} for n, b in (("s1", {"cap": 0.5}), ("s2", {}), ("s4", {}))]
    returns = {"s1": series(S1), "s2": series(S2), "s4": series(S4)}
    plain = allocate(config("risk_parity", [{"name": n, "account": "A"} for n in ("s1", "s2", "s4")], lookback=4),
                     snap(returns=returns), MON)
    assert [x.weight for x in plain.lines] == pytest.approx([4 / 7, 2 / 7, 1 / 7])  # 1/vol = 4 : 2 : 1
    capped = allocate(config("risk_parity", strategies, lookback=4), snap(returns=returns), MON)
    assert [x.weight for x in capped.lines] == pytest.approx([0.5, 1 / 3, 1 / 6])  # the rest split 2 : 1
    assert "capped at 0.5" in capped.lines[0].reason
    assert capped.lines[0].volatility == pytest.approx(0.02 / math.sqrt(3) * math.sqrt(252))


# ---- the schedule ------------------------------------------------------------------------------------------
DUE = [
    ("daily", 1, date(2024, 1, 3), date(2024, 1, 3), False),
    ("daily", 1, date(2024, 1, 3), date(2024, 1, 4), True),
    ("weekly", 1, date(2024, 1, 3), date(2024, 1, 5), False),   # Wednesday -> Friday: no Monday between
    ("weekly", 1, date(2024, 1, 3), date(2024, 1, 8), True),    # the next Monday
    ("weekly", 1, date(2024, 1, 8), date(2024, 1, 14), False),  # reviewed on Monday: not again that week
    ("weekly", 1, date(2024, 1, 3), date(2024, 1, 10), True),   # Monday missed (a holiday): the first run after
    ("monthly", 15, date(2024, 1, 15), date(2024, 2, 14), False),
    ("monthly", 15, date(2024, 1, 15), date(2024, 2, 15), True),
    ("monthly", 15, date(2024, 1, 10), date(2024, 1, 15), True),
    ("monthly", 15, date(2024, 12, 20), date(2025, 1, 14), False),
    ("monthly", 15, date(2024, 12, 20), date(2025, 1, 15), True),
]


@pytest.mark.parametrize("every,day,last,now,expected", DUE)
def test_due(every, day, last, now, expected):
    cfg = config("weights", WEIGHTS, schedule={"every": every, "day": day})
    assert due(cfg, last, now) is expected
    assert due(cfg, None, now) is True


def test_review_reallocates_on_schedule_and_not_before_and_respects_min_change():
    cfg = config("risk_parity", RP, lookback=4, schedule={"every": "weekly", "day": 1}, min_change=0.05)
    first, changed = review(cfg, snap(returns=RETURNS), MON, None)
    assert changed and amounts(first)["s1"] == pytest.approx(666_666.66)
    # Tuesday, the vols moved (s1 now as volatile as s2): not due, the Monday allocation holds
    moved = {**RETURNS, "s1": series(S2)}
    tuesday = MON + timedelta(days=1)
    held, changed = review(cfg, snap(returns=moved), tuesday, first)
    assert held is first and not changed
    # next Monday: s1's vol rose slightly, share 2/3 -> 0.6429 (change 0.024 <= 0.05): kept, dated now
    slight = {**RETURNS, "s1": series([0.011, -0.011, 0.011, -0.011])}
    kept, changed = review(cfg, snap(returns=slight), MON + timedelta(days=7), first)
    assert not changed and kept.lines == first.lines and kept.at == MON + timedelta(days=7)
    assert "min_change" in kept.reason
    # the Monday after: the big move is applied (2/3 -> 1/2)
    new, changed = review(cfg, snap(returns=moved), MON + timedelta(days=14), kept)
    assert changed and amounts(new) == pytest.approx({"s1": 500_000, "s2": 500_000, "s3": 500_000}, abs=0.005)


def test_review_reallocates_off_schedule_when_equity_falls_below_the_allocation():
    cfg = config("weights", WEIGHTS, schedule={"every": "monthly", "day": 1})
    first, _ = review(cfg, snap(), MON, None)
    same, changed = review(cfg, snap(a=900_000), MON + timedelta(days=1), first)
    assert same is first and not changed  # 800,000 allocated out of 900,000: fine
    down, changed = review(cfg, snap(a=700_000), MON + timedelta(days=2), first)
    assert changed and amounts(down) == {"s1": 350_000, "s2": 210_000, "s3": 400_000}


def test_the_record_round_trips_through_json():
    decision = allocate(config("risk_parity", RP, lookback=4), snap(returns={"s1": series(S1)}), MON)
    again = AllocationDecision.from_json(decision.to_json())
    assert again.amount("s1") == decision.amount("s1") and again.at == decision.at
    assert [x.reason for x in again.lines] == [x.reason for x in decision.lines]
    assert again.amount("unknown") is None


# ---- canary split and the sizing cap -----------------------------------------------------------------------
@pytest.mark.parametrize("status,stage,candidate", [(Status.SHADOW, 0, 0.0), (Status.STAGED, 1, 25_000.0),
                                                    (Status.STAGED, 3, 250_000.0), (Status.COMPLETE, 4, 500_000.0),
                                                    (Status.ROLLING_BACK, 2, 0.0)])
def test_canary_stages_split_a_strategys_allocation(status, stage, candidate):
    state = CanaryState(status, stage, 0, date(2024, 1, 2))
    split = canary_split(500_000.0, state, DEFAULT_STAGES)
    assert (split.candidate, split.champion) == (candidate, 500_000.0 - candidate)


CAP = [
    # book value, allocation, orders (symbol, buy, volume, price, lot), expected volumes
    ("sells free room; buys in order until the allocation", 60_000, 100_000,
     [("A", False, 100, 100.0, 100), ("B", True, 300, 100.0, 100), ("C", True, 500, 50.0, 100),
      ("D", True, 100, 10.0, 100)], [100, 300, 400, 0]),
    ("no allocation: nothing cut", 60_000, None, [("B", True, 1000, 100.0, 100)], [1000]),
    ("book already above the allocation: no buy, sells kept", 120_000, 100_000,
     [("A", False, 100, 100.0, 100), ("B", True, 100, 10.0, 100)], [100, 0]),
    ("rounding leaves room for a later, cheaper buy", 0, 10_050,
     [("B", True, 200, 50.1, 100), ("C", True, 500, 10.0, 100)], [200, 0]),
    ("STAR lot of 1 after the minimum", 0, 10_000, [("S", True, 300, 40.0, 1)], [250]),
]


@pytest.mark.parametrize("name,book,allocation,orders,expected", CAP, ids=[c[0] for c in CAP])
def test_cap_to_allocation(name, book, allocation, orders, expected):
    capped = cap_to_allocation([SizedOrder(*o) for o in orders], book, allocation)
    assert [c.volume for c in capped] == expected
    for c in capped:
        assert bool(c.reason) == c.cut
    if allocation is not None:
        held = book + sum((c.volume if c.buy else -c.volume) * c.price for c in capped)
        assert held <= max(allocation, book) + 1e-6


# ---- validation names file:line ----------------------------------------------------------------------------
def test_config_errors_name_file_and_line(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("other: 1\nallocation:\n  accounts:\n    - {id: A, gateway: XT, kind: xt}\n  strategies:\n"
                    "    - {name: s1, account: A, weight: 0.5}\n    - {name: s2, account: A, weight: 1.5}\n",
                    encoding="utf-8")
    with pytest.raises(InputRejected) as err:
        read_allocation_config(path)
    assert [(p.line, p.reason.split(":")[0]) for p in err.value.problems] == [(7, "allocation.strategies.1.weight")]
    path.write_text("allocation:\n  accounts:\n    - {id: A, gateway: XT, kind: xt}\n  strategies:\n"
                    "    - {name: s1, account: Z, weight: 0.5}\n", encoding="utf-8")
    with pytest.raises(InputRejected) as err:
        read_allocation_config(path)
    assert [(p.line, p.reason.split(":")[0]) for p in err.value.problems] == [(5, "allocation.strategies.0.account")]
    path.write_text("allocation:\n  accounts:\n    - {id: A, gateway: XT, kind: xt}\n  strategies:\n"
                    "    - {name: s1, account: A, weight: 0.7}\n    - {name: s2, account: A, weight: 0.5}\n",
                    encoding="utf-8")
    with pytest.raises(InputRejected):  # weights of one account above 1
        read_allocation_config(path)
    with pytest.raises(InputRejected):  # fixed without amounts
        config("fixed", WEIGHTS)
    with pytest.raises(InputRejected) as err:  # a cap the fixed rule would ignore
        config("fixed", [FIXED[0], {**FIXED[1], "cap": 0.5}, FIXED[2]])
    assert err.value.problems[0].reason.startswith("strategies.1.cap:")


# ---- invariants --------------------------------------------------------------------------------------------
returns_st = st.lists(st.floats(-0.1, 0.1, allow_nan=False), min_size=0, max_size=8)


@given(equity_a=st.floats(0, 1e9), equity_b=st.floats(0, 1e9), rule=st.sampled_from(["fixed", "weights", "risk_parity"]),
       amounts_=st.lists(st.floats(0, 1e9), min_size=3, max_size=3),
       caps=st.lists(st.floats(0.2, 1.0), min_size=3, max_size=3),
       rets=st.lists(returns_st, min_size=3, max_size=3), reserve=st.sampled_from([0.0, 0.05]))
def test_invariants(equity_a, equity_b, rule, amounts_, caps, rets, reserve):
    strategies = [{"name": f"s{k}", "account": acc, "amount": amounts_[k], "weight": w,
                   "cap": 1.0 if rule == "fixed" else max(caps[k], w)}
                  for k, (acc, w) in enumerate((("A", 0.5), ("A", 0.3), ("B", 0.8)))]
    cfg = config(rule, strategies, lookback=4, reserve=reserve)
    returns = {f"s{k}": series(r) for k, r in enumerate(rets)}
    decision = allocate(cfg, snap(equity_a, equity_b, returns), MON)
    for account in decision.accounts:
        mine = [x for x in decision.lines if x.account == account.account]
        assert all(x.amount >= 0 and x.weight >= 0 for x in mine)
        assert sum(x.amount for x in mine) <= account.equity * (1 - reserve) + 1e-6
        at_caps = all(abs(x.weight - s["cap"]) < 1e-9 for x in mine for s in strategies if s["name"] == x.strategy)
        if rule == "risk_parity" and account.equity > 0 and not at_caps:
            assert sum(x.weight for x in mine) == pytest.approx(1 - reserve, abs=1e-9)


@given(book=st.floats(0, 1e6), allocation=st.one_of(st.none(), st.floats(0, 1e6)),
       orders=st.lists(st.tuples(st.booleans(), st.integers(0, 5000), st.floats(0.5, 500), st.sampled_from([1, 100, 200])),
                       max_size=6))
def test_cap_invariants(book, allocation, orders):
    sized = [SizedOrder(f"X{k}", buy, float(volume), price, lot) for k, (buy, volume, price, lot) in enumerate(orders)]
    book = max(book, sum(o.volume * o.price for o in sized if not o.buy))  # a strategy sells only what it holds
    capped = cap_to_allocation(sized, book, allocation)
    assert [(c.symbol, c.buy, c.wanted) for c in capped] == [(o.symbol, o.buy, o.volume) for o in sized]
    assert all(0 <= c.volume <= c.wanted for c in capped)
    assert all(c.volume == c.wanted for c in capped if not c.buy or allocation is None)
    if allocation is not None:
        after_sells = book - sum(o.volume * o.price for o in sized if not o.buy)
        bought = sum(c.volume * c.price for c in capped if c.buy)
        assert bought <= max(allocation - after_sells, 0.0) + 1e-6
