"""The fund master: generated exactly from its committed snapshot, and classifying real funds correctly."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path

import pytest

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.market.instruments import MASTER_PATH, InstrumentRegistry, load_master, load_table
from vnpy_rotation.market.instruments import InstrumentKind as K

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("build_fund_master", ROOT / "scripts" / "build_fund_master.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


GEN = _generator()


@pytest.fixture(scope="module")
def registry() -> InstrumentRegistry:
    table = load_table()
    return InstrumentRegistry(table, load_master(MASTER_PATH, table))


def test_generator_reproduces_the_shipped_master_exactly():
    assert GEN.render(GEN.build(GEN.SNAPSHOT)) == MASTER_PATH.read_text(encoding="utf-8")


def test_generator_check_mode_notices_a_changed_master(tmp_path):
    stale = tmp_path / "fund_master.csv"
    stale.write_text(MASTER_PATH.read_text(encoding="utf-8").replace(",equity_etf,", ",bond_etf,", 1), encoding="utf-8")
    assert GEN.main(["--check", "--out", str(stale)]) == 1
    assert GEN.main(["--check", "--out", str(MASTER_PATH)]) == 0


# code, exchange, kind, rule set, verified: each straight from the master (no named entry, no prefix)
KNOWN = [
    ("510300", "SSE", K.EQUITY_ETF, "fund_t1_10", True),
    ("159901", "SZSE", K.EQUITY_ETF, "fund_t1_10", True),
    ("159813", "SZSE", K.EQUITY_ETF, "fund_t1_10", True),
    ("159915", "SZSE", K.CHINEXT_ETF, "fund_chinext", True),
    ("588000", "SSE", K.STAR_ETF, "fund_star", True),
    ("513100", "SSE", K.CROSS_BORDER_ETF, "fund_cross_border", True),
    ("159920", "SZSE", K.CROSS_BORDER_ETF, "fund_cross_border", True),
    ("511010", "SSE", K.BOND_ETF, "fund_t0", True),
    ("518880", "SSE", K.GOLD_ETF, "fund_t0", True),
    ("159934", "SZSE", K.GOLD_ETF, "fund_t0", True),
    ("511990", "SSE", K.MONEY_MARKET_ETF, "fund_t0", True),
    ("159001", "SZSE", K.MONEY_MARKET_ETF, "fund_t0", True),
    ("159985", "SZSE", K.COMMODITY_ETF, "fund_commodity", True),
    ("161725", "SZSE", K.LOF, "fund_t1_10", True),
    ("161125", "SZSE", K.LOF, "fund_cross_border", False),  # 标普500LOF: from its benchmark words
    ("508000", "SSE", K.REIT, "reit", True),
    ("517000", "SSE", K.EQUITY_ETF, "fund_t1_10", False),  # 沪港深500: A and H shares in one index
]


@pytest.mark.parametrize("code,exchange,kind,rules,verified", KNOWN)
def test_known_funds_are_classified_correctly(code, exchange, kind, rules, verified):
    entry = load_master()[(code, exchange)]
    assert (entry.kind, entry.rules, entry.verified) == (kind, rules, verified)
    assert entry.source == GEN.SOURCE and entry.as_of == date.fromisoformat(GEN.AS_OF)


# vt_symbol, limit on 2020-08-21 and 2020-08-24, T+0 on 2024-01-02 (through the registry)
RULES = [
    ("510300.SSE", 0.10, 0.10, False),
    ("159915.SZSE", 0.10, 0.20, False),
    ("159967.SZSE", 0.10, 0.20, False),  # 创业板成长ETF, not in the named table
    ("588000.SSE", 0.20, 0.20, False),
    ("513100.SSE", 0.10, 0.10, True),
    ("511010.SSE", 0.10, 0.10, True),
    ("518880.SSE", 0.10, 0.10, True),
    ("511990.SSE", 0.10, 0.10, True),
    ("159901.SZSE", 0.10, 0.10, False),
    ("159813.SZSE", 0.10, 0.10, False),
    ("159985.SZSE", 0.10, 0.10, True),
]


@pytest.mark.parametrize("vt_symbol,before,after,t0", RULES)
def test_master_funds_get_their_kinds_rules(registry, vt_symbol, before, after, t0):
    inst = registry.by_vt_symbol(vt_symbol)
    assert inst.price_limit(date(2020, 8, 21)) == before
    assert inst.price_limit(date(2020, 8, 24)) == after
    assert inst.is_t0(date(2024, 1, 2)) is t0
    assert (inst.rules.lot, inst.rules.tick) == (100, 0.001)


@pytest.mark.parametrize("code,exchange,delisted", [
    ("159999", "SZSE", date(2023, 3, 20)),  # 永赢中证500ETF
    ("150001", "SZSE", date(2015, 8, 14)),  # 瑞福进取 (classified-fund share)
    ("161022", "SZSE", date(2024, 1, 31)),  # 创业板指数LOF (Tushare: 1610221, a re-used code)
])
def test_delisted_funds_are_present_and_resolve(registry, code, exchange, delisted):
    entry = registry.master_entry(code, exchange)
    assert entry is not None and entry.delist_date == delisted
    assert registry.lookup(code, exchange).kind.is_fund


def test_master_holds_listed_and_delisted_funds_of_both_exchanges():
    entries = load_master().values()
    assert {e.exchange for e in entries} == {"SSE", "SZSE"}
    delisted = [e for e in entries if e.delist_date is not None]
    assert len(delisted) > 500 and len(entries) - len(delisted) > 1500


def test_named_table_agrees_with_the_master():
    """The hand-checked named funds and the generated master must not disagree on a fund in both."""
    table = load_table()
    master = load_master(MASTER_PATH, table)
    disagree = []
    for item in table.instruments:
        entry = master.get((item.code, item.exchange))
        rules = item.rules or table.default_rules[item.kind]
        if entry is not None and (entry.kind, entry.rules) != (item.kind, rules):
            disagree.append((item.code, item.kind.value, rules, entry.kind.value, entry.rules))
    assert disagree == []


# name, fund_type, invest_type, benchmark (hand-written rows in Tushare's layout) → kind, rules, verified, basis
CLASSIFY = [
    ("159001", "SZSE", "货币ETF", "货币市场型", "货币型", "活期存款利率", ("money_market_etf", "fund_t0", True, "fund_type")),
    ("159985", "SZSE", "豆粕ETF", "商品型", "豆粕期货型", "豆粕期货价格指数", ("commodity_etf", "fund_commodity", True, "fund_type")),
    ("159949", "SZSE", "创业板50ETF", "股票型", "被动指数型", "创业板50指数收益率", ("chinext_etf", "fund_chinext", True, "benchmark")),
    ("159781", "SZSE", "科创创业ETF", "股票型", "被动指数型", "中证科创创业50指数收益率", ("star_etf", "fund_star", True, "benchmark")),
    ("561380", "SSE", "电网ETF", "股票型", "被动指数型", "恒生A股电网设备指数收益率", ("equity_etf", "fund_t1_10", True, "benchmark")),
    ("513999", "SSE", "某ETF", "股票型", "被动指数型", "中证某某指数收益率", ("cross_border_etf", "fund_cross_border", True, "code segment")),
    ("159998", "SZSE", "纳指新ETF", "股票型", "被动指数型", "", ("cross_border_etf", "fund_cross_border", False, "name")),
    ("159997", "SZSE", "新能源ETF", "股票型", "被动指数型", "", ("equity_etf", "fund_t1_10", False, "name")),
    ("160125", "SZSE", "南方香港LOF", "股票型", "被动指数型", "恒生指数收益率*95%+活期存款利率*5%", ("lof", "fund_cross_border", False, "benchmark keywords")),
    ("160000", "SZSE", "平衡LOF", "混合型", "混合型", "沪深300指数收益率*60%+恒生指数收益率*20%", ("lof", "fund_t1_10", True, "fund_type")),
    ("184688", "SZSE", "基金开元", "股票型", "", "", ("closed_end_fund", "fund_t1_10", True, "code segment")),
    ("508000", "SSE", "张江REIT", "REITs", "", "", ("reit", "reit", True, "fund_type")),
]


@pytest.mark.parametrize("code,exchange,name,fund_type,invest_type,benchmark,expected", CLASSIFY)
def test_classification_rules(code, exchange, name, fund_type, invest_type, benchmark, expected):
    assert GEN.classify(code, exchange, name, fund_type, invest_type, benchmark) == expected


def test_a_bad_master_row_is_named_by_file_and_line(tmp_path):
    bad = tmp_path / "fund_master.csv"
    lines = MASTER_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].replace(",fund_t1_10,", ",no_such_rules,", 1).replace(",fund_t0,", ",no_such_rules,", 1)
    lines[5] = lines[5].replace(",true,", ",maybe,", 1).replace(",false,", ",maybe,", 1)
    bad.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputRejected) as info:
        load_master(bad)
    assert [(p.source, p.line) for p in info.value.problems] == [(str(bad), 4), (str(bad), 6)]
