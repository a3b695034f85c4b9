"""The user's instrument file (HOME/.vntrader/instruments.yaml) and ``run.py instruments show|add``."""

from __future__ import annotations

import json
import sqlite3
from datetime import date

import pytest
import yaml
from conftest import run_cli

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.market.instruments import (
    InstrumentKind,
    InstrumentRegistry,
    NamedInstrument,
    add_user_instrument,
    default_registry,
    load_master,
    load_table,
    load_user_table,
)

# Hand-written bars on five consecutive trading days (plain layout, volume in shares).
BARS = """date,open,high,low,close,volume,turnover
2024-09-23,1.000,1.020,0.990,1.010,1000000,1010000
2024-09-24,1.010,1.040,1.000,1.030,1200000,1236000
2024-09-25,1.030,1.050,1.020,1.040,1100000,1144000
2024-09-26,1.040,1.080,1.030,1.070,1500000,1605000
2024-09-27,1.070,1.100,1.060,1.090,1300000,1417000
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def registry_with(user_text: str, tmp_path) -> InstrumentRegistry:
    table = load_table()
    path = write(tmp_path / ".vntrader" / "instruments.yaml", user_text)
    return InstrumentRegistry(table, load_master(table=table), load_user_table(path, table), path)


def test_user_file_adds_and_overrides_before_every_shipped_table(tmp_path):
    registry = registry_with(
        "instruments:\n"
        "  - {code: '159000', exchange: SZSE, kind: cross_border_etf, name: 新ETF}\n"   # unknown anywhere
        "  - {code: '159901', exchange: SZSE, kind: chinext_etf}\n"                 # master says equity
        "  - {code: '159915', exchange: SZSE, kind: equity_etf, rules: fund_t1_10}\n"  # named table
        "  - {code: '501999', exchange: SSE, kind: lof, rules: fund_cross_border}\n",   # prefix rule
        tmp_path)
    added = registry.lookup("159000", "SZSE")
    assert (added.kind, added.rule_set, added.name, added.verified) == \
        (InstrumentKind.CROSS_BORDER_ETF, "fund_cross_border", "新ETF", True)
    assert added.is_t0(date(2024, 1, 2))
    assert registry.lookup("159901", "SZSE").price_limit(date(2021, 1, 4)) == 0.20
    assert registry.lookup("159915", "SZSE").price_limit(date(2021, 1, 4)) == 0.10
    assert registry.lookup("501999", "SSE").is_t0(date(2024, 1, 2))
    assert registry.lookup("510300", "SSE").rule_set == "fund_t1_10"  # untouched codes as shipped


# user file text, expected line, field named in the reason
BAD_USER_FILES = [
    ("instruments:\n  - {code: '159000', exchange: SZSE, kind: fund}\n", 2, "instruments.0.kind"),
    ("instruments:\n  - code: '159000'\n    exchange: SZSE\n    kind: equity_etf\n    rules: nope\n", 5,
     "instruments.0.rules"),
    ("instruments:\n  - {code: '159000', exchange: SZ, kind: equity_etf}\n", 2, "instruments.0.exchange"),
    ("instruments:\n  - {code: '159000', exchange: SZSE, kind: lof, colour: red}\n", 2, "instruments.0.colour"),
    ("instruments:\n  - {code: '159000', exchange: SZSE, kind: lof}\n  - {code: '159000', exchange: SZSE, kind: lof}\n",
     3, "instruments.1"),
    ("instruments: [\n", 2, ""),
]


@pytest.mark.parametrize("text,line,field", BAD_USER_FILES)
def test_bad_user_file_names_file_line_and_field(tmp_path, text, line, field):
    path = write(tmp_path / "instruments.yaml", text)
    with pytest.raises(InputRejected) as info:
        load_user_table(path, load_table())
    problem = info.value.problems[0]
    assert (problem.source, problem.line) == (str(path), line)
    assert problem.reason.startswith(field)


def test_add_writes_atomically_and_replaces_an_entry(tmp_path):
    path = tmp_path / ".vntrader" / "instruments.yaml"
    add_user_instrument(path, NamedInstrument(code="159000", exchange="SZSE", kind=InstrumentKind.EQUITY_ETF))
    add_user_instrument(path, NamedInstrument(code="159002", exchange="SZSE", kind=InstrumentKind.BOND_ETF, name="债"))
    add_user_instrument(path, NamedInstrument(code="159000", exchange="SZSE", kind=InstrumentKind.STAR_ETF))
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {"instruments": [
        {"code": "159002", "exchange": "SZSE", "kind": "bond_etf", "name": "债"},
        {"code": "159000", "exchange": "SZSE", "kind": "star_etf"},
    ]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["instruments.yaml"]  # no temp file left


def test_add_refuses_to_overwrite_a_broken_user_file(tmp_path):
    path = write(tmp_path / "instruments.yaml", "instruments:\n  - {code: '1', exchange: SZSE, kind: lof}\n")
    before = path.read_text(encoding="utf-8")
    with pytest.raises(InputRejected):
        add_user_instrument(path, NamedInstrument(code="159000", exchange="SZSE", kind=InstrumentKind.LOF))
    assert path.read_text(encoding="utf-8") == before


def test_default_registry_sees_a_user_file_written_in_the_same_process(runtime_user_file):
    assert default_registry().find("159000", "SZSE") is None
    add_user_instrument(runtime_user_file, NamedInstrument(code="159000", exchange="SZSE", kind=InstrumentKind.LOF))
    assert default_registry().lookup("159000", "SZSE").kind is InstrumentKind.LOF
    add_user_instrument(runtime_user_file, NamedInstrument(code="159000", exchange="SZSE",
                                                           kind=InstrumentKind.GOLD_ETF))
    assert default_registry().lookup("159000", "SZSE").kind is InstrumentKind.GOLD_ETF
    runtime_user_file.unlink()
    assert default_registry().find("159000", "SZSE") is None


# ---- through run.py


def show(code: str, home) -> dict:
    proc = run_cli("instruments", "show", code, "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("code,kind,limits,t0_from,verified", [
    ("159901", "equity_etf", [("1996-12-16", 0.10)], None, True),
    ("159915.SZSE", "chinext_etf", [("1996-12-16", 0.10), ("2020-08-24", 0.20)], None, True),
    ("513100", "cross_border_etf", [("1996-12-16", 0.10)], "2015-01-19", True),
    ("162411.SZSE", "lof", [("1996-12-16", 0.10)], "2015-01-19", False),
])
def test_cli_show(tmp_path, code, kind, limits, t0_from, verified):
    info = show(code, tmp_path)
    assert info["kind"] == kind and info["verified"] is verified
    assert [(p["from"], p["pct"]) for p in info["price_limits"]] == limits
    assert info["t0_from"] == t0_from
    assert (info["lot"], info["tick"], info["stamp_duty"], info["transfer_fee"]) == (100, 0.001, False, False)


def test_cli_add_then_show_and_import_in_the_same_home(tmp_path):
    bars = write(tmp_path / "in" / "159000.csv", BARS)
    refused = run_cli("import", str(bars), home=tmp_path)
    assert refused.returncode != 0
    assert "python run.py instruments add 159000.SZSE --kind" in refused.stderr  # says exactly how to add it

    added = run_cli("instruments", "add", "159000.SZSE", "--kind", "equity_etf", "--name", "测试ETF", home=tmp_path)
    assert added.returncode == 0, added.stderr
    info = show("159000.SZSE", tmp_path)
    assert (info["kind"], info["name"], info["rules"]) == ("equity_etf", "测试ETF", "fund_t1_10")
    assert info["source"].startswith("user file")

    imported = run_cli("import", str(bars), home=tmp_path)
    assert imported.returncode == 0, imported.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        assert db.execute("select symbol, exchange, count(*) from dbbardata group by symbol").fetchall() == \
            [("159000", "SZSE", 5)]


def test_cli_add_refuses_an_invalid_kind_and_writes_nothing(tmp_path):
    proc = run_cli("instruments", "add", "159000.SZSE", "--kind", "etf", home=tmp_path)
    assert proc.returncode == 2
    assert all(k.value in proc.stderr for k in InstrumentKind)  # the allowed values are listed
    assert not (tmp_path / ".vntrader" / "instruments.yaml").exists()
    assert "Traceback" not in proc.stderr


def test_cli_show_unknown_code_fails_cleanly(tmp_path):
    proc = run_cli("instruments", "show", "159000.SZSE", home=tmp_path)
    assert proc.returncode == 2 and "instruments add 159000.SZSE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_real_szse_funds_that_were_refused_now_import(tmp_path):
    """159901 深证100ETF and 159813 半导体ETF: 'no rule covers this code' before the fund master."""
    folder = tmp_path / "in"
    write(folder / "159901.csv", BARS)
    write(folder / "159813.csv", BARS.replace(",1000000,", ",1000100,"))  # one other volume: two distinct files
    proc = run_cli("import", str(folder), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        assert db.execute("select symbol, exchange, count(*) from dbbardata group by symbol order by symbol"
                          ).fetchall() == [("159813", "SZSE", 5), ("159901", "SZSE", 5)]


def test_an_import_names_a_fund_whose_kind_is_unverified(store, tmp_path):
    """501021 香港中小LOF is classified from its benchmark's wording (unverified); 159901 from its index."""
    from vnpy_rotation.data.importer import import_file
    from vnpy_rotation.market.instruments import lookup

    assert not lookup("501021.SSE").verified and lookup("159901.SZSE").verified
    write(tmp_path / "501021.csv", BARS)
    write(tmp_path / "159901.csv", BARS)
    unverified = import_file(tmp_path / "501021.csv", store)
    verified = import_file(tmp_path / "159901.csv", store)
    assert [w for w in unverified.warnings if "501021.SSE" in w and "instruments show" in w]
    assert not [w for w in verified.warnings if "instruments show" in w]
