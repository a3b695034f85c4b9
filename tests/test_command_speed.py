"""``run.py backtest`` made cheaper without changing what it writes: the files are byte-identical to those of the
code before the speed work, also from a ``run.py backtest`` process whose pandas runs without pyarrow, the
report's charts still render in a browser, the CLI imports what a backtest does not need only when asked, and the caches (bundled manifest, bar-table signature) see every change."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, fresh_bundled_store

# sha256[:16] of every file ``write_outputs`` writes except report.html (whose encoding changed), computed by the
# code before the speed work on the bundled ETFs: (strategy, --start) → {file: digest}.
BEFORE = {
    ("etf_rotation", date(2022, 1, 4)): {
        "attribution.csv": "5a33add5a9bbb6f8", "attribution.md": "65671e21c30e037f",
        "attribution_segments.csv": "f7ebec8f2ea141df", "attribution_segments_daily.csv": "e4f2ecaebeadcc23",
        "attribution_summary.csv": "8328bcd761aa9786", "capacity.csv": "e48d90cf58bd193f",
        "corporate_actions.csv": "b7f74779c66e8227", "equity.csv": "027c4733d0046f4d",
        "markouts.csv": "efab29174e120881", "metrics.json": "a5a8f168bb48a3a7", "orders.csv": "8a0bc1027ceedd2c",
        "pool_metrics_summary.csv": "d076709bb1d3208f", "positions.csv": "aabaa292365ef198",
        "report.md": "6b197618edfe3c15", "selection.csv": "96e003404bc21dbe", "trades.csv": "3d0161159df87dc4"},
    ("equal_weight", date(2023, 6, 1)): {
        "attribution.csv": "53a7a314845aea9a", "attribution.md": "4d40e5e3e326fc3b",
        "attribution_segments.csv": "c36aa7df658cab86", "attribution_segments_daily.csv": "0a08ff6feb490be6",
        "attribution_summary.csv": "89ddef7277ef15b6", "corporate_actions.csv": "f1ad273b3372a2a2",
        "equity.csv": "f942c010d63f225a", "markouts.csv": "a04c8989d80c4f0c", "metrics.json": "dbef3a8b41a8a476",
        "orders.csv": "cd057e643cedb61f", "positions.csv": "98f36ccba1b8330b", "report.md": "0e9976d89bb46f07",
        "trades.csv": "22ee2368a7d3bb48"},
}


def python_says(code: str, timeout: int = 120) -> str:
    """What a fresh Python process running ``code`` in this checkout prints; it must exit cleanly."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bundled_store(runtime_home):
    return fresh_bundled_store()


@pytest.mark.parametrize(("strategy", "start"), sorted(BEFORE))
def test_outputs_are_byte_identical_to_the_code_before(bundled_store, tmp_path, strategy, start):
    from vnpy_rotation.backtest.outputs import write_outputs
    from vnpy_rotation.backtest.runner import read_spec, run_backtest

    run = run_backtest(read_spec(strategy, None, start, None, None), bundled_store)
    paths = write_outputs(run, tmp_path / strategy)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in paths if p.name != "report.html"}
    assert digests == BEFORE[(strategy, start)]
    assert all(c.ok for c in run.lookahead) and len(run.lookahead) == 3


def test_the_backtest_command_runs_pandas_without_pyarrow_and_writes_the_same_bytes(tmp_path):
    """``run.py backtest`` keeps pyarrow out of pandas' sight (Python strings instead of Arrow text): the process
    never loads pyarrow, and every file it writes has the digests the in-process run above checks."""
    strategy, start = "etf_rotation", date(2022, 1, 4)
    out, home = tmp_path / "out", tmp_path / "home"
    code = ("import sys; from vnpy_rotation.cli.main import main; "
            f"code = main(['backtest', '--strategy', {strategy!r}, '--start', {start.isoformat()!r}, "
            f"'--out', {str(out)!r}, '--home', {str(home)!r}]); "
            "import pandas; print(code, 'pyarrow' in sys.modules, pandas.Series(['a']).dtype.storage)")
    said = python_says(code, timeout=600)
    assert said.split()[-3:] == ["0", "False", "python"]
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in out.iterdir() if p.name != "report.html"}
    assert digests == BEFORE[(strategy, start)]


def test_pandas_without_arrow_leaves_pyarrow_importable_and_changes_nothing_once_pandas_is_in():
    code = ("import sys; from vnpy_rotation.cli.main import import_pandas_without_arrow as hide; hide(); "
            "import pandas, pyarrow; hide(); "
            "print(pandas.Series(['a']).dtype.storage, type(pyarrow).__name__, sys.modules['pyarrow'] is pyarrow)")
    said = python_says(code)
    assert said.split() == ["python", "module", "True"]


def test_backtest_modules_leave_scipy_signal_stats_and_plotly_unimported():
    """The backtest command imports what it runs: scipy.signal/stats (other VaR methods) and plotly's Python
    package (the report is plain JSON for plotly.js) load only when something asks for them."""
    code = ("import sys, vnpy_rotation.cli.main, vnpy_rotation.cli.backtest_cmd; "
            "print(sorted(m for m in ('scipy.signal', 'scipy.stats', 'plotly') if m in sys.modules))")
    said = python_says(code)
    assert said.strip() == "[]"


def test_importing_the_cli_entry_loads_no_heavy_library():
    """``run.py --help`` and argument errors answer at once: the CLI entry and every subcommand's parser module
    leave pandas, numpy, numba, scipy and vnpy to the handler that runs."""
    heavy = ("pandas", "numpy", "numba", "scipy", "vnpy")
    code = ("import sys, vnpy_rotation.cli.main; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    said = python_says(code)
    assert said.strip() == "[]"


def test_the_manifest_is_parsed_once_and_handed_out_as_copies(monkeypatch):
    import vnpy_rotation.bundled as bundled

    parsed = []
    real = bundled.safe_load
    monkeypatch.setattr(bundled, "safe_load", lambda text: parsed.append(1) or real(text))
    bundled._parsed_manifest.cache_clear()
    try:
        first = bundled.manifest()
        first["pools"].clear()  # a caller's change stays in its copy
        assert bundled.manifest()["pools"] and bundled.bundled_files() and len(parsed) == 1
    finally:
        bundled._parsed_manifest.cache_clear()


def test_the_table_signature_sees_writes_of_this_and_other_connections(store):
    """It is kept between calls, and any write — through this connection or another one (another process) —
    makes the next call recompute it."""
    from vnpy_rotation.bundled import BUNDLED_DIR
    from vnpy_rotation.data.importer import import_paths

    assert import_paths([BUNDLED_DIR / "etf" / "unadjusted_em" / "159915.csv"], store, progress=False).ok
    first = store.table_signature()
    assert store.table_signature() == first
    m = store.bar_model
    with sqlite3.connect(store.db.database) as other:  # another connection to the same file
        other.execute(f"UPDATE {m._meta.table_name} SET close_price = close_price + 1 WHERE id = "
                      f"(SELECT MIN(id) FROM {m._meta.table_name})")
    second = store.table_signature()
    assert second != first
    m.update(volume=m.volume + 1).where(m.id == m.select(m.id).order_by(m.id).limit(1).scalar()).execute()
    assert store.table_signature() not in (first, second)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def test_the_report_charts_render_in_chromium(tmp_path):
    """Every figure is drawn from the compact data block: the traces, their dates and their values are those of
    the result (values to the rounding the report keeps), and the page asks for nothing over the network."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    from playwright.sync_api import sync_playwright
    from test_reports import make_result

    from vnpy_rotation.backtest.metrics import compute_metrics
    from vnpy_rotation.backtest.report_html import FIGURES, write_html

    result = make_result()
    benchmark = result.equity["equity"] * 0 + np.linspace(3800, 3950, len(result.equity))
    metrics = compute_metrics(result.equity, trades=result.trades, benchmark=benchmark, symbol_pnl=result.symbol_pnl)
    path = write_html(tmp_path / "report.html", result, metrics, benchmark, "t")
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(path.as_uri())
            page.wait_for_function("ids => ids.every(id => document.querySelector('#' + id + ' .main-svg'))",
                                   arg=list(FIGURES), timeout=30_000)
            traces = page.evaluate("ids => ids.map(id => document.getElementById(id).data.length)", list(FIGURES))
            equity = page.evaluate("() => { const t = document.getElementById('fig-equity').data[0]; "
                                   "return [Array.from(t.x), Array.from(t.y)]; }")
            positions = page.evaluate("() => document.getElementById('fig-positions').data.map(t => t.name)")
        finally:
            browser.close()
    assert requested == [path.as_uri()]
    # equity + benchmark, drawdown, the monthly heatmap, rolling Sharpe, exposure + holdings count, the four
    # symbols held, the cost bars
    assert traces == [2, 1, 1, 1, 2, 4, 1]
    assert sorted(positions) == sorted(result.holdings_value.columns)
    assert equity[0] == [d.strftime("%Y-%m-%d") for d in result.equity.index]
    assert np.allclose(equity[1], result.equity["equity"].to_numpy(), atol=0.005)


def test_the_report_is_written_without_holding_plotly_js_in_memory(tmp_path):
    """report.html inlines plotly.js (4.8 MB) by copying the file into the page as it is written: the page is the
    same text as the joined string (``render_html``), and writing it never holds a copy of plotly.js (as text,
    inside the page's string or encoded), which cost the command ~25 MB at its peak."""
    import tracemalloc

    from test_reports import make_result

    from vnpy_rotation.backtest.metrics import compute_metrics
    from vnpy_rotation.backtest.report_html import render_html, write_html

    result = make_result()
    metrics = compute_metrics(result.equity, trades=result.trades, symbol_pnl=result.symbol_pnl)
    tracemalloc.start()
    try:
        path = write_html(tmp_path / "report.html", result, metrics, None, "t")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # one copy of plotly.js alone is 4.8 MB
    page = path.read_bytes()
    assert page == render_html(result, metrics, None, "t").encode("utf-8")
    assert page.count(b"<script") == 4 and len(page) > 4_800_000
