"""The dashboard in a real headless browser: Debian's chromium (/usr/bin/chromium) driven by Playwright, which
never downloads a browser of its own here. A missing chromium FAILS this test: CI installs the package.

``ROTATION_DASHBOARD_SCREENSHOT=PATH`` also saves the screenshot to PATH (docs/screenshots/dashboard.png is
made that way).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_dashboard import kpi_table, replay_with_ladder

from vnpy_rotation.web.data import RunFolder
from vnpy_rotation.web.server import Bind, DashboardServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SCREENSHOT_ENV = "ROTATION_DASHBOARD_SCREENSHOT"


@pytest.fixture(scope="module")
def trade_run(tmp_path_factory) -> Path:
    return replay_with_ladder(tmp_path_factory.mktemp("dashboard_browser"))


def cells(page, section: str) -> list[list[str]]:
    """The text of each body row's cells of the table in section ``#section``."""
    return page.eval_on_selector_all(f"#{section} tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def test_dashboard_in_chromium(trade_run, tmp_path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    kpis = kpi_table(trade_run)
    server = DashboardServer(RunFolder(trade_run, kpi_provider=lambda scope, since: kpis), Bind("127.0.0.1", 0),
                             token="T").start()
    requested: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.on("request", lambda request: requested.append(request.url))
                answer = page.goto(f"{server.url}?token=T")  # once in the address, then the cookie
                assert answer is not None and answer.ok and page.url == server.url
                assert page.title() == "交易看板 Dashboard · vnpy_rotation"

                # the KPI table: each KPI's latest value, threshold and status, with its sparkline
                kpi_rows = cells(page, "kpis")
                equity = pd.read_csv(trade_run / "daily_summary.csv")["equity"]
                worst, total = (equity / equity.cummax() - 1).min(), equity.iloc[-1] / equity.iloc[0] - 1
                assert [r[:3] for r in kpi_rows] == [["account", "max_drawdown", f"{worst:.4g}"],
                                                     ["account", "return", f"{total:.4g}"],
                                                     ["etf_rotation", "fills", "0"]]
                assert f"{worst:.4g}" == "-0.04223"
                assert [r[5:7] for r in kpi_rows] == [["> -0.03", "breach"], ["n/a", "n/a"], ["n/a", "n/a"]]
                assert page.locator("#kpis svg polyline").count() == 3

                # the risk state: the rung and since of each scope, as in risk_state.json
                state = json.loads((trade_run / "state" / "risk_state.json").read_text(encoding="utf-8"))
                risk_rows = {r[0]: r for r in cells(page, "risk")}
                assert risk_rows["etf_rotation"][1] == f"REDUCING {state['strategies']['etf_rotation']['since']}"
                assert risk_rows["account"][1] == f"REDUCING {state['account']['since']}"
                assert risk_rows["account"][3] == "-3.27%"

                # the fills: the newest first, as trades.csv's last rows
                trades = pd.read_csv(trade_run / "trades.csv")
                fill_rows = cells(page, "fills")
                assert len(fill_rows) == 20  # the newest 20 of 21
                last = trades.iloc[-1]
                assert fill_rows[0][:5] == [last["datetime"], last["vt_symbol"], last["direction"], f"{last['price']:g}",
                                            f"{last['volume']:,.0f}"]
                assert page.locator("#fills h2 .n").inner_text() == f"共 {len(trades)} 笔 fills · 最新 last 2024-07-29"

                # the refresh: the body is fetched again and still shows the same run
                with page.expect_response(lambda r: r.url.endswith("/fragment")) as refreshed:
                    page.evaluate("refresh()")
                assert refreshed.value.status == 200
                assert len(cells(page, "fills")) == 20 and "更新 Updated" in page.locator("#clock").inner_text()

                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
    finally:
        server.stop()
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(url.startswith(server.url) for url in requested), requested  # nothing fetched from elsewhere
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
