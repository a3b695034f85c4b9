"""Property test: any input to ``run.py import`` is either imported cleanly or refused with
``file:line: reason`` / ``file: reason`` lines naming the file, never a traceback, and a refusal leaves
the database exactly as it was.

Inputs are small slices of real files (bundled, ``../shared/data/real``, tests/data/formats) in every
bar, fundamentals and membership layout, mutated: lines deleted, duplicated, swapped; bytes corrupted;
numbers and dates changed; truncated; re-encoded; a column dropped; gzip added or removed.
"""

from __future__ import annotations

import gzip
import re
import sys
import tempfile
from pathlib import Path

from conftest import BUNDLED, REAL, empty_database
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from vnpy_rotation.data.formats import FORMATS

HERE = Path(__file__).resolve().parent
SEEDS = [
    BUNDLED / "etf" / "unadjusted_em" / "510300.csv",  # akshare, Chinese header, volume in lots
    BUNDLED / "etf" / "qfq_em" / "510050.csv",  # akshare, English header, qfq by folder name
    BUNDLED / "etf" / "qfq_em_chenkx612" / "513100.csv",  # akshare, mixed header
    BUNDLED / "etf" / "unadjusted_tdx" / "510050.csv",  # TDX, no header
    BUNDLED / "stocks" / "600000.csv.gz",  # Baostock, gzip
    BUNDLED / "index" / "sh000300.csv",  # Baostock-style index
    BUNDLED / "index" / "h00300.csv",  # close-only
    BUNDLED / "fundamentals" / "profit_data.csv.gz",  # Baostock profit (fundamentals importer)
    BUNDLED / "fundamentals" / "growth_data.csv.gz",
    BUNDLED / "index_constituents" / "HS300_history.csv",  # membership changes
    BUNDLED / "index_constituents" / "hs300_stocks_2024-08-19.csv",  # membership snapshot
    HERE / "data" / "formats" / "600529.SH_tushare_daily_newest_first.csv",
    HERE / "data" / "formats" / "000333.SZ_choice_synthetic.csv",
    HERE / "data" / "formats" / "000333.SZ_choice_qfq_synthetic.csv",
    HERE / "data" / "formats" / "510300.SH_wind_synthetic.csv",
]
if REAL is not None:
    SEEDS += [REAL / "etf_daily_unadjusted_tdx" / "159869.csv", REAL / "etf_daily_511260_yangmigh" / "511260.csv"]
SEEDS = [s for s in SEEDS if s.exists()]


def _text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"seed {path} is not text")


SEED_LINES = {s: _text(s).splitlines() for s in SEEDS}
SLICE_ROWS = 8  # small slices keep each example fast; whole files are covered by the importer tests


# -- mutations: each takes and returns the file's lines -----------------------------------------------
def _delete(lines, i):
    return lines[:i] + lines[i + 1:] if lines else lines


def _duplicate(lines, i):
    return lines[:i + 1] + lines[i:] if lines else lines


def _swap(lines, i, j):
    if len(lines) < 2:
        return lines
    out = list(lines)
    i, j = i % len(out), j % len(out)
    out[i], out[j] = out[j], out[i]
    return out


def _number(lines, i, k, value):
    """Replace the k-th number of line i by ``value`` (negative, zero, huge, a fraction, not a number)."""
    if not lines:
        return lines
    line = lines[i % len(lines)]
    spans = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?", line)]
    if not spans:
        return lines
    a, b = spans[k % len(spans)]
    out = list(lines)
    out[i % len(lines)] = line[:a] + value + line[b:]
    return out


def _date(lines, i, day):
    if not lines:
        return lines
    out = list(lines)
    idx = i % len(out)
    out[idx] = re.sub(r"\d{4}([-/]?)\d{1,2}\1\d{1,2}", lambda m: day.replace("-", m.group(1)), out[idx], count=1)
    return out


def _drop_column(lines, c):
    return [",".join(cells[:c] + cells[c + 1:]) for cells in (line.split(",") for line in lines)]


LINE_MUTATIONS = st.one_of(
    st.tuples(st.just(_delete), st.integers(0, SLICE_ROWS + 2)),
    st.tuples(st.just(_duplicate), st.integers(0, SLICE_ROWS + 2)),
    st.tuples(st.just(_swap), st.integers(0, SLICE_ROWS + 2), st.integers(0, SLICE_ROWS + 2)),
    st.tuples(st.just(_number), st.integers(0, SLICE_ROWS + 2), st.integers(0, 12),
              st.sampled_from(["-1", "0", "1e308", "inf", "nan", "0.0001", "99999999999", "x", "", "--", "1,234.5"])),
    st.tuples(st.just(_date), st.integers(0, SLICE_ROWS + 2),
              st.sampled_from(["2030-01-01", "2001-01-01", "2024-10-01", "2024-09-28", "1900-02-30", "9999-12-31",
                               "2024-02-30", "20240923"])),
    st.tuples(st.just(_drop_column), st.integers(0, 12)),
)


@st.composite
def mutated_files(draw) -> tuple[str, bytes]:
    seed = draw(st.sampled_from(SEEDS))
    lines = SEED_LINES[seed]
    header = draw(st.integers(0, 7)) > 0 or len(lines) <= SLICE_ROWS  # keep the header (usually), a window of rows
    start = draw(st.integers(1, max(1, len(lines) - SLICE_ROWS)))
    rows = lines[start:start + draw(st.integers(0, SLICE_ROWS))]
    lines = ([lines[0]] if header else []) + rows
    for mutation, *args in draw(st.one_of(st.just([]), st.lists(LINE_MUTATIONS, min_size=1, max_size=3))):
        lines = mutation(lines, *args)
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "gbk", "utf-16"]))
    data = ("\n".join(lines) + draw(st.sampled_from(["\n", "\r\n", ""]))).encode(encoding, errors="replace")
    corrupt = st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=2)
    for position, byte in draw(st.one_of(st.just([]), st.just([]), corrupt)):
        if data:  # corrupt a byte
            position %= len(data)
            data = data[:position] + bytes([byte]) + data[position + 1:]
    if draw(st.integers(0, 3)) == 0 and data:
        data = data[:draw(st.integers(0, len(data)))]  # truncate
    name = seed.name
    if draw(st.integers(0, 3)) == 0:  # flip the gzip wrapping
        if name.endswith(".gz"):
            name = name[:-3]
        else:
            data, name = gzip.compress(data), name + ".gz"
    elif name.endswith(".gz"):
        data = gzip.compress(data)
    if draw(st.integers(0, 9)) == 0 and data:
        data = data[:len(data) // 2]  # a gzip (or text) cut in the middle
    return name, data


def snapshot(store) -> dict[str, list]:
    """Every row of vnpy's bar tables and of the project's tables (rotation_*), ids left out."""
    from vnpy_rotation.data.store import MODELS
    from vnpy_rotation.fundamentals.store import MODELS as FUNDAMENTAL_MODELS

    module = sys.modules[type(store.database).__module__]
    models = [store.bar_model, *MODELS, *FUNDAMENTAL_MODELS,
              *[m for m in [getattr(module, "DbBarOverview", None)] if m is not None]]
    out = {}
    for model in models:
        fields = [f for f in model._meta.sorted_fields if f.name != "id"]
        out[model.__name__] = sorted(map(repr, model.select(*fields).tuples()))
    return out


PROBLEM = r"^{path}(:\d+)?: \S.*$"


def check_import(store, folder: Path, name: str, data: bytes, fmt: str = "auto") -> None:
    """Import one file (as ``--format fmt``); assert a clean import or well-formed problems naming it,
    and no write on refusal."""
    from vnpy_rotation.data.importer import ImportOptions, import_paths

    path = folder / name
    path.write_bytes(data)
    before = snapshot(store)
    result = import_paths([path], store, ImportOptions(fmt=fmt), progress=False)  # anything but InputRejected escapes and fails the test
    event("imported" if result.ok else "refused")
    if result.ok:
        assert len(result.reports) + len(result.tables) == 1
        return
    assert [source for source, _ in result.failures] == [str(path)]
    for _, problems in result.failures:
        assert problems
        for problem in problems:
            text = str(problem)
            assert "\n" not in text and "Traceback" not in text, text
            assert re.match(PROBLEM.format(path=re.escape(str(path))), text), text
    assert snapshot(store) == before


FORMAT_OPTION = st.sampled_from(["auto"] * 14 + list(FORMATS))  # mostly detected; sometimes the wrong layout
FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# Crashes found by longer runs, kept as fixed examples.
FOUND = [
    ("510300.csv.gz", b"\x1f\x8b\x08\x00\xaf\xef\x10k\x02\xff"),  # gzip cut after its header
    ("510300.csv", b"date,open,high,low,close,volume,turnover\n9999-12-31,3.5,3.6,3.4,3.5,1000,3500\n"),
    ("HS300_history.csv", b"chang_date,code,in_out\n0/9/18,527,dropout\n"),  # year 0: out of pandas' range
    ("profit_data.csv", b"code,pubDate,statDate,roeAvg,npMargin,gpMargin,netProfit,epsTTM,MBRevenue,totalShare,"
                        b"liqaShare\nsh.1,234.5,2013-04-26,2013-03-31,0.03,0.02,0.15,1.6e10,0.74,,8.9e10,7.0e10\n"),  # row too long
    ("sh000300.csv", b"date,open,close,high,low,volume,amount,turn,pctChg\n"  # no tradestatus: volume required
                     b"2017-01-18,3323.3390,3339.3650,3350.9620,3320.4060,nan,75680677264.0000,0.002768,0.391100\n"),
]


@FUZZ
@given(case=mutated_files(), fmt=FORMAT_OPTION)
@example(case=FOUND[0], fmt="auto")
@example(case=FOUND[1], fmt="auto")
@example(case=FOUND[2], fmt="auto")
@example(case=FOUND[3], fmt="auto")
@example(case=FOUND[4], fmt="auto")
def test_mutated_real_files_import_cleanly_or_are_refused_whole(store, tmp_path, case, fmt):
    name, data = case
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        check_import(store, Path(folder), name, data, fmt)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(["510300.csv", "600000.csv.gz", "profit_data.csv", "HS300_history.csv", "x.xlsx",
                             "510300.txt"]),
       data=st.one_of(st.binary(max_size=300),
                      st.text(alphabet=st.sampled_from(list("0123456789,.-/:\n \"日期开盘收datecloseopenhighlow")),
                              max_size=300).map(str.encode)))
def test_random_bytes_are_refused_with_file_and_reason(store, tmp_path, name, data):
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        check_import(store, Path(folder), name, data)


def test_the_seeds_themselves_import_cleanly(store, tmp_path):
    """The unmutated slices are good data: the property above is not vacuously about refusals."""
    from vnpy_rotation.data.importer import import_paths

    for k, seed in enumerate(SEEDS):
        empty_database(store)  # each seed on its own: two slices of one fund from different sources may conflict
        lines = SEED_LINES[seed]
        text = "\n".join(lines[:1 + SLICE_ROWS]) + "\n"
        path = tmp_path / str(k) / seed.name.removesuffix(".gz")
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        result = import_paths([path], store, progress=False)
        assert result.ok, (seed, result.failures)
