"""Build ``vnpy_rotation/market/fund_master.csv`` from the committed public fund list.

Input: ``scripts/sources/tushare_fund_basic_E.csv`` (Tushare ``fund_basic(market='E')``: every
exchange-traded fund, listed ``L``, delisted ``D`` and issued ``I``; see ``scripts/sources/PROVENANCE.md``).
Nothing is downloaded. Run from the repository root::

    python scripts/build_fund_master.py            # rewrite the shipped master
    python scripts/build_fund_master.py --check    # exit 1 when the shipped master differs

How a kind is decided (most specific first):

1. the official fund type (``fund_type``: 货币市场型, 债券型, 商品型 + ``invest_type`` 黄金现货合约 or
   …期货型, REITs, QDII) — verified;
2. for ETFs, the tracked index (``benchmark``): a foreign / Hong Kong index → cross-border,
   a ChiNext-only index → ChiNext-tracking, a STAR index → STAR-tracking, any other index → equity — verified;
3. the SSE code segment (513xxx and 520xxx are cross-border ETFs) — verified;
4. otherwise the fund's name with the same keywords — ``unverified``.

LOFs keep kind ``lof``; a LOF whose benchmark leads with a foreign index gets the cross-border rules
(T+0): verified when Tushare's type says QDII, else inferred (unverified).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "scripts" / "sources" / "tushare_fund_basic_E.csv"
MASTER = ROOT / "vnpy_rotation" / "market" / "fund_master.csv"
SOURCE = "tushare_fund_basic_E"
# The day the list was taken (see PROVENANCE.md: 589880 still carries its first-day "N" prefix).
AS_OF = "2025-02-28"

EXCHANGES = {"SH": "SSE", "SZ": "SZSE"}

# Words that name a market outside the mainland A-share market in an index name. "港股通", "恒生" and
# "香港" cover Stock-Connect funds, which the exchanges list as cross-border ETFs.
FOREIGN = re.compile(
    r"恒生|港股|香港|中概|海外|纳斯达克|纳指|(?<!中信)标普(?!中国)|道琼斯|日经|东证|德国|DAX|法国|CAC|英国|美国|全球|亚洲|"
    r"新兴市场|沙特|巴西|印度|越南|东南亚|欧洲|汇率|美元|巴克莱|彭博|原油|Nasdaq|S&P|NYSE|MSCI美国|"
    r"MSCI全球|MSCI新兴|MSCI日本|MSCI欧洲|富时发达|富时亚太|新交所|东盟|H股|红筹"
)
DOMESTIC = re.compile(r"A股")  # 恒生A股…, MSCI中国A股…, 标普中国A股…: mainland shares under a foreign brand
MIXED = re.compile(r"沪深港|沪港深")  # A shares and Hong Kong shares in one index: the kind is not decidable
STAR = re.compile(r"科创")  # 上证科创板…, 科创50, 中证科创创业50 (every constituent is on a 20 % board)
CHINEXT = re.compile(r"创业板|创业50|创50|创成长")
SSE_CROSS_BORDER = ("513", "520")  # SSE code segments reserved for cross-border ETFs


@dataclass(frozen=True)
class MasterRow:
    code: str
    exchange: str
    name: str
    kind: str
    rules: str
    verified: bool
    basis: str
    list_date: str
    delist_date: str
    source: str
    as_of: str


def vehicle(code: str, exchange: str, fund_type: str) -> str:
    """What the listed code is: etf, lof, reit or closed (closed-end funds), from official fields/segments."""
    if fund_type == "REITs" or (exchange == "SSE" and code.startswith("508")) or \
            (exchange == "SZSE" and code.startswith("180")):
        return "reit"
    if exchange == "SZSE":
        return "etf" if code.startswith("159") else "closed" if code.startswith("184") else "lof"
    if code.startswith(("500", "505")):
        return "closed"
    return "lof" if code.startswith(("501", "502", "506")) else "etf"


def _first_component(benchmark: str) -> str:
    """The leading index of a composite benchmark such as ``恒生指数收益率*80%+活期存款利率*20%``."""
    return re.split(r"[*×+＋]", benchmark, maxsplit=1)[0]


def _equity_kind(text: str) -> str | None:
    if FOREIGN.search(text) and not DOMESTIC.search(text) and not MIXED.search(text):
        return "cross_border_etf"
    if STAR.search(text):
        return "star_etf"
    if CHINEXT.search(text):
        return "chinext_etf"
    return None


ETF_RULES = {"equity_etf": "fund_t1_10", "chinext_etf": "fund_chinext", "star_etf": "fund_star",
             "cross_border_etf": "fund_cross_border", "bond_etf": "fund_t0", "gold_etf": "fund_t0",
             "money_market_etf": "fund_t0", "commodity_etf": "fund_commodity"}


def classify(code: str, exchange: str, name: str, fund_type: str, invest_type: str,
             benchmark: str) -> tuple[str, str, bool, str]:
    """(kind, rule set, verified, basis) for one fund; ``basis`` says which field decided."""
    what = vehicle(code, exchange, fund_type)
    if what == "reit":
        return "reit", "reit", True, "fund_type"
    if what == "closed":
        return "closed_end_fund", "fund_t1_10", True, "code segment"
    if what == "lof":
        if fund_type == "QDII":
            return "lof", "fund_cross_border", True, "fund_type"
        if benchmark and FOREIGN.search(_first_component(benchmark)):
            return "lof", "fund_cross_border", False, "benchmark keywords"
        if not benchmark and FOREIGN.search(name):
            return "lof", "fund_cross_border", False, "name"
        return "lof", "fund_t1_10", True, "fund_type"
    kind, verified, basis = _etf_kind(code, exchange, name, fund_type, invest_type, benchmark)
    return kind, ETF_RULES[kind], verified, basis


def _etf_kind(code: str, exchange: str, name: str, fund_type: str, invest_type: str,
              benchmark: str) -> tuple[str, bool, str]:
    if fund_type == "货币市场型":
        return "money_market_etf", True, "fund_type"
    if fund_type == "债券型":
        return "bond_etf", True, "fund_type"
    if fund_type == "商品型":
        if "黄金" in invest_type:
            return "gold_etf", True, "fund_type"
        if "期货" in invest_type:
            return "commodity_etf", True, "fund_type"
    if fund_type == "QDII":
        return "cross_border_etf", True, "fund_type"
    if benchmark and MIXED.search(benchmark):
        return "equity_etf", False, "benchmark mixes A and Hong Kong shares"
    if benchmark:
        found = _equity_kind(benchmark)
        if found is None and exchange == "SSE" and code.startswith(SSE_CROSS_BORDER):
            return "cross_border_etf", True, "code segment"
        return found or "equity_etf", True, "benchmark"
    if exchange == "SSE" and code.startswith(SSE_CROSS_BORDER):
        return "cross_border_etf", True, "code segment"
    for kind, words in (("money_market_etf", "货币|添益|日利|快线"), ("bond_etf", "债"),
                        ("gold_etf", "黄金|金ETF"), ("commodity_etf", "豆粕|有色期货|能源化工|白银")):
        if re.search(words, name):
            return kind, False, "name"
    return _equity_kind(name) or "equity_etf", False, "name"


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if text else ""


def build(snapshot: Path = SNAPSHOT) -> list[MasterRow]:
    """Every fund of the snapshot as a master row, sorted by exchange and code.

    Tushare gives the earlier fund of a re-used code a 7th digit (``5020001.SH`` 500等权 before
    ``502000.SH`` 500增强LOF). Lookups are by the 6-digit code, so such funds share one row: the latest
    fund's name and kind, the earliest list date; kinds that differ make the row unverified.
    """
    by_code: dict[tuple[str, str], list[MasterRow]] = {}
    with snapshot.open(encoding="utf-8", newline="") as handle:
        for item in csv.DictReader(handle):
            code, _, suffix = item["ts_code"].partition(".")
            code, exchange = code[:6], EXCHANGES[suffix]
            kind, rules, verified, basis = classify(code, exchange, item["name"], item["fund_type"],
                                                    item["invest_type"], item["benchmark"])
            by_code.setdefault((exchange, code), []).append(
                MasterRow(code, exchange, item["name"], kind, rules, verified, basis,
                          _date(item["list_date"]), _date(item["delist_date"]), SOURCE, AS_OF))
    rows = []
    for key in sorted(by_code):
        funds = sorted(by_code[key], key=lambda r: r.list_date)
        latest = funds[-1]
        if len(funds) > 1:
            same = len({(r.kind, r.rules) for r in funds}) == 1
            latest = replace(latest, list_date=funds[0].list_date, verified=latest.verified and same,
                             basis=f"{latest.basis}; code reused" + ("" if same else " by another kind"))
        rows.append(latest)
    return rows


def render(rows: list[MasterRow]) -> str:
    """The master's exact CSV text (LF line ends, booleans as true/false)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f.name for f in fields(MasterRow)])
    for row in rows:
        writer.writerow(["true" if v is True else "false" if v is False else v for v in astuple(row)])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--out", type=Path, default=MASTER)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    text = render(build(args.snapshot))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'differs from the generator output'}")
        return 0 if same else 1
    tmp = args.out.with_suffix(".csv.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(f"{args.out}: {text.count(chr(10)) - 1} funds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
