"""Write the synthetic Choice / Wind fixtures of this folder from real bars (run by hand, not by tests).

No real Choice or Wind export was found in public repositories, so these files are built from the layouts
documented in docs/data/formats.md, with real prices from ../shared/data/real (see PROVENANCE.md here):
- 510300 (沪深300ETF) 2024-09-23..2024-10-08, etf_daily_unadjusted_em/510300.csv (volume there in lots);
- 000333 (美的集团) 2019-02-14..2019-02-26 and 2019-05-27..2019-06-05,
  stocks_daily_unadjusted_baostock/000333.csv.gz (2019-02-20 suspended; 2019-05-30 ex-dividend).
Usage: python make_synthetic.py /path/to/shared/data/real
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import date
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def etf(real: Path) -> pd.DataFrame:
    frame = pd.read_csv(real / "etf_daily_unadjusted_em" / "510300.csv", dtype=str)
    frame = frame[(frame["日期"] >= "2024-09-23") & (frame["日期"] <= "2024-10-08")]
    return pd.DataFrame({"date": frame["日期"], "open": frame["开盘"], "high": frame["最高"], "low": frame["最低"],
                         "close": frame["收盘"], "shares": frame["成交量"].astype(int) * 100,
                         "amount": frame["成交额"].astype(float)})


def stock(real: Path, lo: str, hi: str) -> pd.DataFrame:
    frame = pd.read_csv(real / "stocks_daily_unadjusted_baostock" / "000333.csv.gz", dtype=str)
    return frame[(frame["date"] >= lo) & (frame["date"] <= hi)].reset_index(drop=True)


def wind(real: Path) -> None:
    """Wind 行情序列 export: 代码,名称,日期,开盘价(元),…,成交额(百万),成交量(股); GBK CSV and .xlsx; footer."""
    rows = [["510300.SH", "沪深300ETF", r.date, r.open, r.high, r.low, r.close, f"{r.amount / 1e6:.4f}", str(r.shares)]
            for r in etf(real).itertuples()]
    header = ["代码", "名称", "日期", "开盘价(元)", "最高价(元)", "最低价(元)", "收盘价(元)", "成交额(百万)", "成交量(股)"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([header, *rows, [], ["数据来源：Wind"]])
    (HERE / "510300.SH_wind_synthetic.csv").write_bytes(out.getvalue().encode("gbk"))

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for r in rows:
        sheet.append([r[0], r[1], pd.Timestamp(r[2]).to_pydatetime(), *map(float, r[3:8]), int(r[8])])
    sheet.append([])
    sheet.append(["数据来源：Wind"])
    book.save(HERE / "510300.SH_wind_synthetic.xlsx")


def thousands(value: float, decimals: int = 2) -> str:
    return f"{value:,.{decimals}f}"


def choice(real: Path) -> None:
    """Choice 行情 export: UTF-8 with BOM, 证券代码,证券名称,交易时间,…; "1,234.00" numbers; "--" on a
    suspended day; blank rows and a 数据来源 footer. Units are not in the header (volume in shares, as checked
    against turnover on import)."""
    header = ["证券代码", "证券名称", "交易时间", "开盘价", "最高价", "最低价", "收盘价", "成交量", "成交额"]

    def write(name: str, frame: pd.DataFrame, title: list[str], factor_before: tuple[str, float] | None) -> None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for line in title:
            writer.writerow([line])
        writer.writerow(header)
        for r in frame.itertuples():
            if r.tradestatus == "0":
                writer.writerow(["000333.SZ", "美的集团", r.date, "--", "--", "--", "--", "--", "--"])
                continue
            scale = factor_before[1] if factor_before and r.date < factor_before[0] else 1.0
            prices = [f"{float(p) * scale:.2f}" for p in (r.open, r.high, r.low, r.close)]
            writer.writerow(["000333.SZ", "美的集团", r.date, *prices, thousands(float(r.volume), 0),
                             thousands(float(r.amount))])
        writer.writerows([[], [], ["数据来源：东方财富Choice数据"]])
        (HERE / name).write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))

    write("000333.SZ_choice_synthetic.csv", stock(real, "2019-02-14", "2019-02-26"), [], None)
    # Multiplicative 前复权: prices before the 2019-05-30 ex-date times preclose / previous close (49.08 / 50.38).
    write("000333.SZ_choice_qfq_synthetic.csv", stock(real, "2019-05-27", "2019-06-05"),
          ["复权方式：前复权"], ("2019-05-30", 49.08 / 50.38))


if __name__ == "__main__":
    source = Path(sys.argv[1])
    wind(source)
    choice(source)
    print("written", date.today())
