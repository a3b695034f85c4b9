"""The several-strategy configuration shape (top-level accounts: and strategies:, allocation: with the rule):
validated once, errors at file:line of the offending node."""

from __future__ import annotations

import pytest
import yaml

from vnpy_rotation.allocation.config import run_config, shared_symbols
from vnpy_rotation.errors import InputRejected

GOOD = """\
accounts:
  - {id: a, gateway: REPLAY_A, kind: replay}
  - {id: b, gateway: REPLAY_B, kind: replay}
strategies:
  - {name: s1, strategy: etf_rotation, account: a, weight: 0.5}
  - {name: s2, strategy: vqm, account: a, weight: 0.4, settings: {top_n: 5}}
  - {name: s3, strategy: etf_rotation, account: b, weight: 0.9}
allocation:
  rule: weights
  schedule: {every: weekly, day: 1}
"""


def parsed(text: str):
    return run_config(yaml.safe_load(text), "run.yaml", text)


def test_the_shape_gives_the_runs_and_the_allocation():
    config = parsed(GOOD)
    assert [(s.name, s.strategy, s.account) for s in config.strategies] == [
        ("s1", "etf_rotation", "a"), ("s2", "vqm", "a"), ("s3", "etf_rotation", "b")]
    assert config.strategies[1].settings == {"top_n": 5}
    allocation = config.allocation()
    assert [(s.name, s.weight) for s in allocation.strategies] == [("s1", 0.5), ("s2", 0.4), ("s3", 0.9)]
    assert allocation.rule == "weights" and allocation.schedule.every == "weekly"


@pytest.mark.parametrize("old, new, line, field", [
    ("account: b, weight: 0.9", "account: c, weight: 0.9", 7, "strategies.2.account"),  # unknown account
    ("name: s3, strategy: etf_rotation, account: b", "name: s1, strategy: etf_rotation, account: b", 5,
     "strategies"),  # one strategy on two accounts
    ("weight: 0.4, settings", "weight: 0.4, nonsense: 1, settings", 6, "strategies.1.nonsense"),
])
def test_a_bad_config_names_file_line_and_field(old, new, line, field):
    with pytest.raises(InputRejected) as caught:
        parsed(GOOD.replace(old, new))
    problem = caught.value.problems[0]
    assert (problem.source, problem.line) == ("run.yaml", line)
    assert str(problem).split(": ")[1].startswith(field)


def test_two_strategies_of_one_account_trading_one_symbol():
    config = parsed(GOOD)
    symbols = {"s1": ("510300.SSE", "510500.SSE"), "s2": ("510500.SSE", "600000.SSE"), "s3": ("510300.SSE",)}
    assert shared_symbols(config, symbols) == [(1, "s1", ("510500.SSE",))]  # s3 is in another account
    assert shared_symbols(config, {**symbols, "s2": ("600000.SSE",)}) == []


CLI = """\
accounts:
  - {id: a, gateway: REPLAY_A, kind: replay}
  - {id: b, gateway: REPLAY_B, kind: replay}
strategies:
  - {name: s1, strategy: equal_weight, account: a, weight: 0.5, settings: {symbols: ['510300.SSE']}}
  - {name: s2, strategy: equal_weight, account: a, weight: 0.4, settings: {symbols: ['510500.SSE']}}
  - {name: s3, strategy: equal_weight, account: b, weight: 0.9, settings: {symbols: ['510300.SSE']}}
allocation: {rule: weights}
"""


@pytest.mark.parametrize("old, new, line, field", [
    ("account: b, weight", "account: c, weight", 7, "strategies.2.account"),  # unknown account
    ("name: s3", "name: s1", 5, "strategies"),  # one strategy on two accounts
    ("['510500.SSE']", "['510300.SSE']", 6, "strategies.1"),  # s1 and s2 trade 510300 in account a
])
def test_run_py_trade_refuses_a_bad_several_strategy_config(tmp_path, old, new, line, field):
    from conftest import run_cli

    config = tmp_path / "run.yaml"
    config.write_text(CLI.replace(old, new), encoding="utf-8")
    done = run_cli("trade", "--gateway", "replay", "--strategy", "equal_weight", "--config", str(config),
                   "--out", str(tmp_path / "out"), home=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [message] = [x for x in done.stderr.splitlines() if x.strip()]
    assert message.startswith(f"error: {config}:{line}: {field}")  # one line: file:line: the field
    assert not (tmp_path / "out").exists()
