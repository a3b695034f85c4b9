"""Point-in-time fundamentals and index membership, in the same database as the bars.

Tables beside :mod:`vnpy_rotation.data.store`'s (same ``rotation_`` prefix, same connection, so one
``atomic()`` block covers a whole import):

- ``rotation_fundamental``: one row per (code, report period, announcement); announcement NULL when
  unknown (point-in-time use then waits for the statutory deadline, see :mod:`.pit`). Files fill some
  fields of a row each (Baostock profit vs growth, xt Income vs Capital): writes merge fields.
- ``rotation_index_change``: membership changes (+1 in, -1 out) per index and effective day.
- ``rotation_index_snapshot``: full member lists per index and day.
- ``rotation_balance``: balance-sheet rows (equity level, solvency ratios), keyed and merged like reports.
- ``rotation_express`` / ``rotation_forecast``: Baostock preliminary results (业绩快报) and forecasts
  (业绩预告) per (code, period, announcement); a file's row replaces the stored one with the same key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import pandas as pd
from peewee import CharField, DateField, FloatField, IntegerField, TextField
from vnpy.trader.database import BaseDatabase, get_database

from ..data.store import _chunks, _Row
from .formats import BALANCE_FIELDS, EXPRESS_FIELDS, FORECAST_FIELDS, REPORT_FIELDS


class FundamentalRow(_Row):
    period_end = DateField()
    announced = DateField(null=True)
    source = CharField()  # baostock | xt
    eps_ttm = FloatField(null=True)
    net_profit = FloatField(null=True)
    roe_ytd = FloatField(null=True)
    np_margin = FloatField(null=True)
    gp_margin = FloatField(null=True)
    revenue = FloatField(null=True)
    total_share = FloatField(null=True)
    float_share = FloatField(null=True)
    yoy_equity = FloatField(null=True)
    yoy_asset = FloatField(null=True)
    yoy_net_profit = FloatField(null=True)
    yoy_eps = FloatField(null=True)
    yoy_parent_net_profit = FloatField(null=True)

    class Meta:
        table_name = "rotation_fundamental"
        indexes = ((("symbol", "exchange", "period_end", "announced"), True),)


class IndexChangeRow(_Row):
    index_symbol = CharField()  # vt_symbol of the index, e.g. 000300.SSE
    day = DateField()
    change = IntegerField()  # +1 taken in, -1 dropped out

    class Meta:
        table_name = "rotation_index_change"
        indexes = ((("index_symbol", "day", "symbol", "exchange"), True),)


class IndexSnapshotRow(_Row):
    index_symbol = CharField()
    day = DateField()

    class Meta:
        table_name = "rotation_index_snapshot"
        indexes = ((("index_symbol", "day", "symbol", "exchange"), True),)


class BalanceRow(_Row):
    period_end = DateField()
    announced = DateField(null=True)
    source = CharField()
    total_equity = FloatField(null=True)  # CNY, attributable to the parent's shareholders
    total_share = FloatField(null=True)
    current_ratio = FloatField(null=True)
    quick_ratio = FloatField(null=True)
    cash_ratio = FloatField(null=True)
    yoy_liability = FloatField(null=True)
    liability_to_asset = FloatField(null=True)
    asset_to_equity = FloatField(null=True)

    class Meta:
        table_name = "rotation_balance"
        indexes = ((("symbol", "exchange", "period_end", "announced"), True),)


class ExpressRow(_Row):
    period_end = DateField()
    announced = DateField()
    updated = DateField(null=True)  # performanceExpUpdateDate: the latest disclosure of it
    source = CharField()
    total_asset = FloatField(null=True)
    net_asset = FloatField(null=True)
    eps_chg_pct = FloatField(null=True)
    roe_wa = FloatField(null=True)  # decimal (Baostock gives percent)
    eps_diluted = FloatField(null=True)  # year to date
    yoy_revenue = FloatField(null=True)
    yoy_op_profit = FloatField(null=True)

    class Meta:
        table_name = "rotation_express"
        indexes = ((("symbol", "exchange", "period_end", "announced"), True),)


class ForecastRow(_Row):
    period_end = DateField()
    announced = DateField()
    source = CharField()
    type = CharField(null=True)  # 预增 / 略增 / 预减 / 扭亏 / 首亏 …
    abstract = TextField(null=True)
    chg_pct_up = FloatField(null=True)  # decimal bounds of the parent net profit's change
    chg_pct_dwn = FloatField(null=True)

    class Meta:
        table_name = "rotation_forecast"
        indexes = ((("symbol", "exchange", "period_end", "announced"), True),)


MODELS = (FundamentalRow, IndexChangeRow, IndexSnapshotRow, BalanceRow, ExpressRow, ForecastRow)
assert set(REPORT_FIELDS) <= set(FundamentalRow._meta.fields), "a report field has no column"
assert set(BALANCE_FIELDS) <= set(BalanceRow._meta.fields), "a balance field has no column"
KEY = ["symbol", "exchange", "period_end", "announced"]


class FundamentalStore:
    """Reads and writes reports and index membership; every write method expects an open transaction."""

    def __init__(self, database: BaseDatabase | None = None) -> None:
        self.database = database or get_database()
        self.db = self.database.db
        self.db.bind(MODELS)
        self.db.create_tables(MODELS)

    def transaction(self) -> AbstractContextManager:
        return self.db.atomic()

    # -- writes ----------------------------------------------------------------------------------
    def upsert_reports(self, frame: pd.DataFrame, fields: tuple[str, ...], source: str, model=FundamentalRow,
                       columns: tuple[str, ...] = REPORT_FIELDS) -> None:
        """Insert or update reports (or ``model`` rows with ``columns``) by (code, period, announcement),
        writing only ``fields``.

        A stored row with the same key keeps its other fields: a growth file does not erase what a
        profit file stored. Matching is done here, not by ``ON CONFLICT``: SQL unique indexes treat
        NULL announcements as all different.
        """
        new = frame[[*KEY, *fields]].copy()
        new["period_end"], new["announced"] = _day_text(new["period_end"]), _day_text(new["announced"])
        new["key"] = _keys(new)
        old = self._stored(set(new["symbol"]), model, columns)
        old = old[_keys(old).isin(set(new["key"]))]
        kept = [f for f in columns if f not in fields]
        if kept:
            new = new.join(old.assign(key=_keys(old)).set_index("key")[kept], on="key")
        for chunk in _chunks(old["id"].tolist()):
            model.delete().where(model.id.in_(chunk)).execute()
        values = new[[*KEY, *columns]].astype(object)
        rows = values.where(values.notna(), None).assign(source=source).itertuples(index=False, name=None)
        self._insert(model, [*KEY, *columns, "source"], list(rows))

    def upsert_balance(self, frame: pd.DataFrame, fields: tuple[str, ...], source: str) -> None:
        """Balance-sheet rows, merged by key like :meth:`upsert_reports`."""
        self.upsert_reports(frame, fields, source, BalanceRow, BALANCE_FIELDS)

    def save_dated(self, kind: str, frame: pd.DataFrame, source: str) -> None:
        """Express reports (``kind`` "express") or forecasts ("forecast"); a row with the same key is replaced."""
        model, extra = (ExpressRow, ("updated", *EXPRESS_FIELDS)) if kind == "express" else \
            (ForecastRow, ("type", "abstract", *FORECAST_FIELDS))
        values = frame.reindex(columns=[*KEY, *extra]).copy()
        for column in ("period_end", "announced", "updated"):
            if column in values:
                values[column] = _day_text(values[column])
        values = values.astype(object)
        rows = values.where(values.notna(), None).assign(source=source).itertuples(index=False, name=None)
        self._insert(model, [*KEY, *extra, "source"], list(rows), replace=True)

    def save_index_changes(self, index: str, frame: pd.DataFrame) -> None:
        """Store membership changes; a change stored for the same (index, day, code) is replaced."""
        rows = zip([index] * len(frame), _day_text(frame["day"]), frame["symbol"], frame["exchange"],
                   frame["change"].astype(int).tolist())
        self._insert(IndexChangeRow, ["index_symbol", "day", "symbol", "exchange", "change"], list(rows), replace=True)

    def replace_snapshots(self, index: str, frame: pd.DataFrame) -> None:
        """Store member lists; a list for a day replaces whatever was stored for that day."""
        days = _day_text(frame["day"])
        m = IndexSnapshotRow
        m.delete().where((m.index_symbol == index) & m.day.in_(sorted(set(days)))).execute()
        rows = zip([index] * len(frame), days, frame["symbol"], frame["exchange"])
        self._insert(m, ["index_symbol", "day", "symbol", "exchange"], list(rows))

    # -- reads -----------------------------------------------------------------------------------
    def reports(self, vt_symbols: list[str] | None = None) -> pd.DataFrame:
        """Every stored report (of ``vt_symbols``): vt_symbol, period_end, announced (NaT unknown), fields.

        Sorted by vt_symbol, period_end, announced (unknown last).
        """
        frame = self._stored(None if vt_symbols is None else {s.partition(".")[0] for s in vt_symbols})
        frame.insert(0, "vt_symbol", frame["symbol"] + "." + frame["exchange"])
        if vt_symbols is not None:
            frame = frame[frame["vt_symbol"].isin(set(vt_symbols))]
        frame["period_end"], frame["announced"] = _timestamps(frame["period_end"]), _timestamps(frame["announced"])
        frame = frame.sort_values(["vt_symbol", "period_end", "announced"], na_position="last")
        return frame[["vt_symbol", "period_end", "announced", *REPORT_FIELDS]].reset_index(drop=True)

    def balance(self, vt_symbols: list[str] | None = None) -> pd.DataFrame:
        """Stored balance-sheet rows, like :meth:`reports`: vt_symbol, period_end, announced, balance fields."""
        frame = self._stored(None if vt_symbols is None else {s.partition(".")[0] for s in vt_symbols},
                             BalanceRow, BALANCE_FIELDS)
        return _dated_frame(frame, vt_symbols, BALANCE_FIELDS)

    def express(self, vt_symbols: list[str] | None = None) -> pd.DataFrame:
        """Stored express reports: vt_symbol, period_end, announced, updated, the express fields."""
        return self._dated(ExpressRow, ("updated", *EXPRESS_FIELDS), vt_symbols)

    def forecasts(self, vt_symbols: list[str] | None = None) -> pd.DataFrame:
        """Stored forecasts: vt_symbol, period_end, announced, type, abstract, change bounds (decimals)."""
        return self._dated(ForecastRow, ("type", "abstract", *FORECAST_FIELDS), vt_symbols)

    def _dated(self, model, columns: tuple[str, ...], vt_symbols: list[str] | None) -> pd.DataFrame:
        select = model.select(model.id, *(getattr(model, c) for c in (*KEY, *columns)))
        frame = pd.DataFrame(self._raw(select), columns=["id", *KEY, *columns])
        for column in ("period_end", "announced", "updated"):
            if column in frame:
                frame[column] = _day_text(frame[column])
        numeric = [c for c in columns if isinstance(getattr(model, c), FloatField)]
        frame[numeric] = frame[numeric].astype(float)
        return _dated_frame(frame, vt_symbols, columns)

    def index_changes(self, index: str) -> pd.DataFrame:
        """Membership changes of ``index``: day, vt_symbol, change (+1 in / -1 out), sorted."""
        m = IndexChangeRow
        rows = self._raw(m.select(m.day, m.symbol, m.exchange, m.change).where(m.index_symbol == index))
        return _membership(pd.DataFrame(rows, columns=["day", "symbol", "exchange", "change"]), ["change"])

    def index_snapshots(self, index: str) -> pd.DataFrame:
        """Member lists of ``index``: day, vt_symbol, sorted."""
        m = IndexSnapshotRow
        rows = self._raw(m.select(m.day, m.symbol, m.exchange).where(m.index_symbol == index))
        return _membership(pd.DataFrame(rows, columns=["day", "symbol", "exchange"]), [])

    def symbols_with_reports(self) -> list[str]:
        m = FundamentalRow
        rows = self._raw(m.select(m.symbol, m.exchange).distinct())
        return sorted(f"{code}.{exchange}" for code, exchange in rows)

    def _stored(self, codes: set[str] | None, m=FundamentalRow, fields: tuple[str, ...] = REPORT_FIELDS
                ) -> pd.DataFrame:
        """Stored report rows (of these codes): ``id``, key (dates as ISO text), fields as floats."""
        columns = ["id", *KEY, *fields]
        select = m.select(*(getattr(m, c) for c in columns))
        if codes is None:
            rows = self._raw(select)
        else:
            rows = [r for chunk in _chunks(sorted(codes)) for r in self._raw(select.where(m.symbol.in_(chunk)))]
        frame = pd.DataFrame(rows, columns=columns)
        frame[list(fields)] = frame[list(fields)].astype(float)
        frame["period_end"], frame["announced"] = _day_text(frame["period_end"]), _day_text(frame["announced"])
        return frame

    def _raw(self, query) -> list[tuple]:
        """Rows of a select without peewee's per-value conversion (bulk reads)."""
        return self.db.execute_sql(*query.sql()).fetchall()

    def _insert(self, model, columns: list[str], rows: list[tuple], replace: bool = False) -> None:
        """Bulk insert by ``executemany``: peewee builds the SQL once instead of once per value."""
        if not rows:
            return
        fields = [getattr(model, c) for c in columns]
        query = model.insert_many(rows[:1], fields=fields)
        sql, _ = (query.on_conflict_replace() if replace else query).sql()
        dates = [i for i, f in enumerate(fields) if isinstance(f, DateField)]  # ISO text → the driver's date
        params = [list(row) for row in rows]
        for row in params:
            for i in dates:
                row[i] = fields[i].db_value(row[i])
        self.db.cursor().executemany(sql, params)


def _keys(frame: pd.DataFrame) -> pd.Series:
    """One text key per report row: NULL announcements compare equal here, unlike in SQL."""
    return frame["symbol"] + "|" + frame["exchange"] + "|" + frame["period_end"] + "|" + frame["announced"].fillna("")


def _day_text(values: pd.Series) -> pd.Series:
    """Dates as ISO text (None where unknown) from timestamps, ``date`` objects or SQLite's text."""
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%d")
    else:
        text = values.map(lambda v: None if pd.isna(v) else str(v)[:10])
    return text.astype(object).where(values.notna(), None)


def _timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(_day_text(values), format="%Y-%m-%d").astype("datetime64[ns]")


def _dated_frame(frame: pd.DataFrame, vt_symbols: list[str] | None, columns: tuple[str, ...]) -> pd.DataFrame:
    """Stored rows → vt_symbol, period_end, announced (timestamps), ``columns``; sorted like reports."""
    frame.insert(0, "vt_symbol", frame["symbol"] + "." + frame["exchange"])
    if vt_symbols is not None:
        frame = frame[frame["vt_symbol"].isin(set(vt_symbols))]
    for column in ("period_end", "announced", "updated"):
        if column in frame:
            frame[column] = _timestamps(frame[column])
    frame = frame.sort_values(["vt_symbol", "period_end", "announced"], na_position="last")
    return frame[["vt_symbol", "period_end", "announced", *(c for c in columns if c != "announced")]
                 ].reset_index(drop=True)


def _membership(frame: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"day": _timestamps(frame["day"]), "vt_symbol": frame["symbol"] + "." + frame["exchange"]})
    for column in extra:
        out[column] = frame[column].astype(int)
    return out.sort_values(["day", "vt_symbol"]).reset_index(drop=True)
