"""The dashboard's JSON endpoints on a real trade run (a replay of the bundled data with a tight drawdown ladder,
so the risk state moves), its token and binding rules, its read-only surface, and ``--dashboard`` beside the
trading daemon."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.web.data import NO_KPI_HISTORY, RunFolder
from vnpy_rotation.web.server import Bind, DashboardServer, check_bind, parse_bind

SPAN = ("--start", "2024-06-24", "--end", "2024-07-31")  # five weekly rebalances of etf_rotation
# drawdown ladder at 3 %: the run's account falls 3.9 % from its peak on 2024-07-25 and goes REDUCING
LADDER = "backtest:\n  risk:\n    ladder: {reduce_at: 0.03, halt_at: 0.10, recover_at: 0.01, cooldown: 50}\n"


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.text = response.read().decode("utf-8")

    def json(self):
        return json.loads(self.text)


class Client:
    """Requests to a real dashboard server (uvicorn on a free loopback port, on a thread), redirects not followed;
    a cookie the server sets is sent back, as a browser does."""

    def __init__(self, run: RunFolder, token: str | None = None) -> None:
        self.server = DashboardServer(run, Bind("127.0.0.1", 0), token).start()
        self.cookie = ""

    def request(self, method: str, path: str, headers: dict | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            connection.request(method.upper(), path, headers={**({"Cookie": self.cookie} if self.cookie else {}),
                                                               **(headers or {})})
            answer = Answer(connection.getresponse())
        finally:
            connection.close()
        if "set-cookie" in answer.headers:
            self.cookie = answer.headers["set-cookie"].split(";")[0]
        return answer

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.request("GET", path, headers)

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def serve():
    """``serve(run, token=None)`` → a :class:`Client` of a dashboard server, stopped after the test."""
    started: list[Client] = []

    def start(run: RunFolder, token: str | None = None) -> Client:
        started.append(Client(run, token))
        return started[-1]

    yield start
    for client in started:
        client.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dashboard_home")


def replay_with_ladder(home: Path) -> Path:
    """``run.py trade --gateway replay`` of SPAN with the 3 % ladder into ``home / "run"``."""
    config = home / "ladder.yaml"
    config.write_text(LADDER, encoding="utf-8")
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--config", str(config),
                   "--out", str(home / "run"), home=home)
    assert done.returncode == 0, done.stderr
    return home / "run"


@pytest.fixture(scope="module")
def trade_run(home) -> Path:
    return replay_with_ladder(home)


def kpi_table(run: Path) -> pd.DataFrame:
    """A KPI history computed from the run's own closes, in the KPI store's columns: the account's return and
    running max drawdown (threshold > -3 %) and the strategy's fills per session."""
    summary = pd.read_csv(run / "daily_summary.csv", parse_dates=["date"])
    equity = summary["equity"].to_numpy()
    worst = np.minimum.accumulate(equity / np.maximum.accumulate(equity) - 1.0)
    n = len(summary)
    return pd.concat([
        pd.DataFrame({"date": summary["date"], "scope": "account", "kpi": "max_drawdown", "value": worst,
                      "baseline": np.nan, "threshold": "> -0.03", "status": np.where(worst > -0.03, "ok", "breach")}),
        pd.DataFrame({"date": summary["date"], "scope": "account", "kpi": "return", "value": equity / equity[0] - 1,
                      "baseline": 0.0, "threshold": "n/a", "status": ["n/a"] * n}),
        pd.DataFrame({"date": summary["date"], "scope": "etf_rotation", "kpi": "fills",
                      "value": summary["fills"].astype(float), "baseline": np.nan, "threshold": "n/a",
                      "status": ["n/a"] * n}),
    ], ignore_index=True)


@pytest.fixture(scope="module")
def client(trade_run):
    kpis = kpi_table(trade_run)
    client = Client(RunFolder(trade_run, kpi_provider=lambda scope, since: kpis))
    yield client
    client.close()


def test_fills_and_orders_equal_the_run_files(client, trade_run):
    trades = pd.read_csv(trade_run / "trades.csv")
    fills = client.get("/api/fills").json()
    assert fills["count"] == len(trades) == 21
    last = trades.iloc[-1]
    assert fills["last"]["datetime"] == last["datetime"] == "2024-07-29"
    assert (fills["last"]["vt_symbol"], fills["last"]["direction"]) == (last["vt_symbol"], last["direction"])
    assert (fills["last"]["price"], fills["last"]["volume"]) == (last["price"], last["volume"])
    today = trades[trades["datetime"] == "2024-07-29"]
    assert fills["session"] == "2024-07-29" and len(fills["today"]) == len(today) == 3
    assert fills["fees"] == pytest.approx(today[["commission", "stamp_duty", "transfer_fee"]].to_numpy().sum())
    orders = pd.read_csv(trade_run / "orders.csv")
    answer = client.get("/api/orders").json()
    assert answer["count"] == len(orders)
    assert len(answer["refused"]) == int((orders["status"] != "filled").sum())


def test_risk_rows_equal_the_state_file(client, trade_run):
    state = json.loads((trade_run / "state" / "risk_state.json").read_text(encoding="utf-8"))
    rows = {r["scope"]: r for r in client.get("/api/risk").json()["rows"]}
    assert rows["etf_rotation"]["rung"] == state["strategies"]["etf_rotation"]["rung"] == "REDUCING"
    assert rows["etf_rotation"]["since"] == state["strategies"]["etf_rotation"]["since"] == "2024-07-25"
    assert rows["account"]["rung"] == "REDUCING" and rows["account"]["since"] == state["account"]["since"]
    assert rows["account"]["equity"] == state["account"]["equity"]
    summary = pd.read_csv(trade_run / "daily_summary.csv")
    assert rows["account"]["equity"] == summary["equity"].iloc[-1]
    assert rows["account"]["peak"] == summary["equity"].max()  # the ladder's peak: the highest close
    assert rows["account"]["drawdown"] == pytest.approx(summary["equity"].iloc[-1] / summary["equity"].max() - 1)


def test_account_plan_canary_and_alerts(client, trade_run):
    summary = pd.read_csv(trade_run / "daily_summary.csv")
    account = client.get("/api/account").json()
    assert (account["sessions"], account["date"]) == (28, "2024-07-31")
    assert account["equity"] == summary["equity"].iloc[-1] and account["pnl"] == summary["pnl"].iloc[-1]
    assert account["positions"] == json.loads(summary["positions"].iloc[-1])
    assert account["trend"]["equity"] == list(summary["equity"])
    # the last rebalance (2024-07-29): the REDUCING rung cut both buys to nothing, the sells filled
    plan = client.get("/api/plan").json()["strategies"][0]
    assert (plan["strategy"], plan["session"], plan["targets"]) == ("etf_rotation", "2024-07-29", [])
    legs = {leg["symbol"]: leg for leg in plan["legs"]}
    assert {s for s, leg in legs.items() if leg["cuts"] == ["risk_denied"]} == {"510050.SSE", "510880.SSE"}
    assert all(leg["submitted"] == 0 for leg in legs.values() if leg["side"] == "buy")
    assert client.get("/api/canary").json()["rows"] == [{"strategy": "etf_rotation", "status": "none"}]
    alerts = client.get("/api/alerts").json()["rows"]
    rung = [(a["day"], a["scope"], a["kind"]) for a in alerts if a["kind"] == "ACTIVE → REDUCING"]
    assert sorted(rung) == [("2024-07-25", "account", "ACTIVE → REDUCING"),
                            ("2024-07-25", "etf_rotation", "ACTIVE → REDUCING")]
    # the running max drawdown first fell below -3 % on 2024-07-25: its latest row is a breach
    assert [(a["day"], a["kind"]) for a in alerts if a["kind"] == "KPI breach"] == [("2024-07-31", "KPI breach")]


def test_kpis_latest_value_and_trend(client, trade_run):
    kpis = client.get("/api/kpis").json()
    assert kpis["note"] is None and kpis["breaches"] == 1
    rows = {(r["scope"], r["kpi"]): r for r in kpis["rows"]}
    assert [r["scope"] for r in kpis["rows"]] == ["account", "account", "etf_rotation"]  # the account first
    equity = pd.read_csv(trade_run / "daily_summary.csv")["equity"]
    worst = rows[("account", "max_drawdown")]
    assert worst["value"] == pytest.approx((equity / equity.cummax() - 1).min())
    assert (worst["status"], worst["threshold"], worst["date"]) == ("breach", "> -0.03", "2024-07-31")
    assert rows[("account", "return")]["baseline"] == 0.0 and rows[("account", "max_drawdown")]["baseline"] is None
    assert len(worst["trend"]) == 28


def test_no_kpi_store_is_a_visible_note(serve, trade_run):
    for provider in (None, lambda scope, since: pd.DataFrame()):
        client = serve(RunFolder(trade_run, kpi_provider=provider))
        assert client.get("/api/kpis").json() == {"rows": [], "note": NO_KPI_HISTORY}
        assert NO_KPI_HISTORY in client.get("/").text


def test_kpi_provider_is_asked_from_the_last_session_back(trade_run):
    asked = []
    RunFolder(trade_run, kpi_provider=lambda scope, since: asked.append((scope, since)) or pd.DataFrame()).section("kpis")
    assert [(s, d.isoformat()) for s, d in asked] == [(None, "2024-02-02")]  # 180 days before 2024-07-31


def test_missing_and_damaged_files(serve, tmp_path, trade_run):
    empty = serve(RunFolder(tmp_path / "nothing", kpi_provider=None)).get("/api/summary")
    assert empty.status_code == 200
    data = empty.json()
    assert data["fills"]["count"] == 0 and data["account"] == {"sessions": 0} and data["risk"]["rows"] == []
    # a damaged risk state: that section names the file, the rest of the page still shows
    copy = tmp_path / "copy"
    for name in ("trades.csv", "orders.csv", "daily_summary.csv"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((trade_run / name).read_bytes())
    (copy / "state").mkdir()
    (copy / "state" / "risk_state.json").write_text("{\"account\": ", encoding="utf-8")
    damaged = serve(RunFolder(copy, kpi_provider=None))
    data = damaged.get("/api/summary").json()
    assert "risk_state.json" in data["risk"]["error"] and data["fills"]["count"] == 21
    assert damaged.get("/").status_code == 200


def test_read_only_surface(client, trade_run):
    before = {p: p.stat().st_mtime_ns for p in trade_run.rglob("*") if p.is_file()}
    for method in ("post", "put", "delete", "patch"):
        for path in ("/", "/api/summary", "/api/risk", "/fragment"):
            assert client.request(method, path).status_code == 405
    assert client.get("/api/summary").status_code == 200 and client.get("/fragment").status_code == 200
    assert {p: p.stat().st_mtime_ns for p in trade_run.rglob("*") if p.is_file()} == before  # nothing written
    routes = [r for r in client.server.server.config.app.routes if hasattr(r, "methods")]
    assert routes and all(r.methods <= {"GET", "HEAD"} for r in routes)


def test_page_is_self_contained(client):
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page and "<link" not in page and "src=" not in page
    assert "setInterval(refresh,30000)" in page  # the body is re-fetched every 30 s


# -- the token and the binding ------------------------------------------------------------------------------
def test_token_rules(serve, trade_run):
    run = RunFolder(trade_run, kpi_provider=None)
    anonymous = serve(run, token="s3cret")
    for path in ("/", "/api/summary", "/fragment", "/healthz"):
        assert anonymous.get(path).status_code == 401
    assert anonymous.get("/api/summary", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/api/summary?token=wrong").status_code == 401
    assert anonymous.get("/api/summary", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert anonymous.cookie == ""  # the header is not remembered
    assert serve(run, token="s3cret").get("/api/summary?token=s3cret").status_code == 200
    browser = serve(run, token="s3cret")
    first = browser.get("/?token=s3cret")  # the token once: a cookie, and away from the address
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "httponly" in first.headers["set-cookie"].lower() and browser.cookie == "dashboard_token=s3cret"
    assert browser.get("/api/fills").status_code == 200 and browser.get("/").status_code == 200
    browser.cookie = "dashboard_token=wrong"
    assert browser.get("/api/fills").status_code == 401


def test_binding_rules():
    assert parse_bind("8765") == Bind("127.0.0.1", 8765)
    assert parse_bind("0.0.0.0:80") == Bind("0.0.0.0", 80) and parse_bind("[::1]:9000") == Bind("::1", 9000)
    for text in ("x", "127.0.0.1:", "127.0.0.1:70000"):
        with pytest.raises(InputRejected):
            parse_bind(text)
    for host in ("127.0.0.1", "127.8.0.1", "::1", "localhost"):
        check_bind(Bind(host, 1), None)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(InputRejected, match="--bind"):
            check_bind(Bind(host, 1), None)
        check_bind(Bind(host, 1), "T")  # with a token it may


def test_cli_refuses_a_public_address_without_token(home, trade_run):
    done = run_cli("dashboard", "--run", str(trade_run), "--bind", "0.0.0.0:0", home=home, timeout=120)
    assert done.returncode == 2 and "--bind" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("dashboard", "--run", str(home / "missing"), home=home, timeout=120)
    assert done.returncode == 2 and "--run" in done.stderr and not (home / "missing").exists()
    out = home / "refused"
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--out", str(out),
                   "--dashboard", "0.0.0.0:0", home=home, timeout=120)
    assert done.returncode == 2 and "--dashboard" in done.stderr and not out.exists()  # refused before any state


def test_background_server_serves_and_stops(trade_run):
    server = DashboardServer(RunFolder(trade_run, kpi_provider=None), Bind("127.0.0.1", 0), token="T").start()
    try:
        request = urllib.request.Request(f"{server.url}api/fills", headers={"Authorization": "Bearer T"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["count"] == 21
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}api/fills", timeout=10)
        assert refused.value.code == 401
    finally:
        server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_trade_serves_the_dashboard_while_it_runs(home):
    """``trade --dashboard PORT``: the page answers while the replay runs, and the server stops with the daemon."""
    with socket.socket() as probe:  # a free port for the daemon (port 0 would not be known to this test)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = home / "served"
    daemon = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "trade", "--gateway", "replay", "--strategy",
                               "etf_rotation", *SPAN, "--out", str(out), "--dashboard", str(port), "--home", str(home)],
                              cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    answered = []
    while daemon.poll() is None and not answered:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/run", timeout=5) as answer:
                answered.append(json.loads(answer.read()))
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    stdout, stderr = daemon.communicate(timeout=600)
    assert daemon.returncode == 0, stderr
    assert answered and answered[0]["folder"] == str(out) and answered[0]["gateway"] == "replay"
    with pytest.raises(OSError):  # stopped with the daemon
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_beside_the_daemon_pages_are_served_only_once_the_run_folder_is_claimed(tmp_path):
    """A request made while the daemon claims its folder (writes the run's parameters) waits and then sees them:
    the dashboard never answers for a folder without its run's parameters."""
    import argparse
    import threading

    from vnpy_rotation.apps.rotation.daemon import claim_out_folder
    from vnpy_rotation.cli.dashboard_cmd import beside_daemon

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    args = argparse.Namespace(out=out, dashboard=f"127.0.0.1:{port}", token=None)
    answers: list[dict] = []

    def ask() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/run", timeout=20) as answer:
            answers.append(json.loads(answer.read()))

    asking = threading.Thread(target=ask)

    def claim() -> str:
        asking.start()  # the socket is bound: the request is queued, not refused
        asking.join(0.5)
        answered_early = list(answers)
        done = claim_out_folder(out, {"gateway": "replay", "strategy": "etf_rotation"})
        assert answered_early == []  # nothing served before the parameters exist
        return done

    with beside_daemon(args, claim):
        asking.join(20)
    assert [a["gateway"] for a in answers] == ["replay"] and answers[0]["folder"] == str(out)


@pytest.fixture
def run_copy(tmp_path, trade_run) -> Path:
    """A copy of the trade run to change by hand."""
    copy = tmp_path / "copy"
    shutil.copytree(trade_run, copy)
    return copy


def test_canary_stage_and_its_transitions(serve, run_copy):
    """A canary promoted from shadow to 5 % and then rolled back: the stage, share and transitions shown are
    the ledger's (as ``run.py canary status`` shows them)."""
    from vnpy_rotation.apps.rotation.canary_records import canary_view
    from vnpy_rotation.canary import machine
    from vnpy_rotation.canary.config import CanaryConfig, Stage
    from vnpy_rotation.live.canary_stage import start_ledger

    stages = (Stage(name="shadow", share=0.0, min_sessions=2), Stage(name="5pct", share=0.05, min_sessions=2),
              Stage(name="full", share=1.0, min_sessions=2))
    state = machine.start(stages, date(2024, 7, 1))
    for day, event in ((2, "hold"), (3, "promote"), (4, "hold"), (5, "rollback")):
        state = machine.step(state, event, date(2024, 7, day), f"{event} on the 7/{day} close", stages)
    ledger = start_ledger("etf_rotation", "v1champion", "v2candidate", "EtfRotationStrategy", {},
                          CanaryConfig(stages=stages), state, {}, 1e6, 1e6, date(2024, 7, 1))
    path = run_copy / "state" / "etf_rotation.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**raw, "canary": ledger.to_json()}), encoding="utf-8")
    client = serve(RunFolder(run_copy, kpi_provider=None))
    row = client.get("/api/canary").json()["rows"][0]
    view = canary_view(ledger)
    assert (row["status"], row["stage"], row["share"]) == (view["status"], view["stage"], view["share"])
    assert (row["status"], row["stage"]) == ("rolling_back", "5pct")
    assert [h["event"] for h in row["history"]] == ["promote", "rollback"]
    alerts = [(a["day"], a["kind"], a["severity"]) for a in client.get("/api/alerts").json()["rows"]
              if a["kind"].startswith("canary")]
    assert alerts == [("2024-07-05", "canary rollback", "alert"), ("2024-07-03", "canary promote", "info")]
    page = client.get("/").text
    assert "rolling_back" in page and "5pct" in page


def test_a_torn_denial_line_is_left_to_the_engine(serve, run_copy):
    """The daemon may be appending a denial: the dashboard shows the whole lines and never cuts the torn one
    (the risk engine repairs its own log when it opens it)."""
    log = run_copy / "state" / "risk_denials.jsonl"
    whole = json.dumps({"strategy": "etf_rotation", "vt_symbol": "510050.SSE", "direction": "buy", "volume": 1500.0,
                        "rung": "REDUCING", "reason": "etf_rotation REDUCING: buys refused", "time": "2024-07-29T09:30:00"})
    log.write_text(whole + "\n" + whole[:40], encoding="utf-8")
    before = log.read_bytes()
    alerts = serve(RunFolder(run_copy, kpi_provider=None)).get("/api/alerts").json()["rows"]
    assert [(a["day"], a["kind"], a["scope"]) for a in alerts if a["kind"] == "denial"] == [
        ("2024-07-29", "denial", "etf_rotation")]
    assert log.read_bytes() == before


def test_a_failing_kpi_store_shows_in_its_panel_only(serve, trade_run):
    def failing(scope, since):
        raise RuntimeError("database is locked")

    client = serve(RunFolder(trade_run, kpi_provider=failing))
    data = client.get("/api/summary").json()
    assert data["kpis"] == {"error": "RuntimeError: database is locked"} and data["fills"]["count"] == 21
    page = client.get("/")
    assert page.status_code == 200 and "database is locked" in page.text


# -- a folder or file of another kind ------------------------------------------------------------------------
# a backtest's orders.csv (run.py backtest --out): other columns than the daemon's
BACKTEST_ORDERS = ("date,vt_symbol,direction,requested,submitted,filled,price,status,reason,cause\n"
                   "2024-01-08,510880.SSE,buy,103618.4211,103600.0,103600.0,3.04,filled,,rebalance\n")


def section_html(page: str, key: str) -> str:
    """The HTML of the page's ``<section id="key">``."""
    start = page.index(f'<section id="{key}">')
    return page[start:page.index("</section>", start)]


def test_cli_refuses_a_folder_that_is_not_a_trade_run(home, tmp_path):
    backtest = tmp_path / "backtest"
    backtest.mkdir()
    (backtest / "orders.csv").write_text(BACKTEST_ORDERS, encoding="utf-8")
    for folder in (backtest, tmp_path / "empty"):
        folder.mkdir(exist_ok=True)
        before = sorted(p.name for p in folder.rglob("*"))
        done = run_cli("dashboard", "--run", str(folder), "--bind", "127.0.0.1:0", home=home, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0 and "--run" in done.stderr and "run_parameters.json" in done.stderr
        assert sorted(p.name for p in folder.rglob("*")) == before


def test_an_odd_orders_file_shows_in_its_panel_only(serve, run_copy):
    (run_copy / "orders.csv").write_text(BACKTEST_ORDERS, encoding="utf-8")
    client = serve(RunFolder(run_copy, kpi_provider=None))
    error = client.get("/api/orders").json()["error"]
    assert error.startswith(f"{run_copy / 'orders.csv'}:1: ") and "volume" in error and "traded" in error
    assert client.get("/api/alerts").json()["count"] > 0  # the alerts still show the risk engine's
    for path in ("/", "/fragment"):
        page = client.get(path)
        assert page.status_code == 200
        assert "orders.csv" in section_html(page.text, "orders") and "<tbody>" not in section_html(page.text, "orders")
        assert section_html(page.text, "fills").count("<tr") == 1 + 20  # the header and the 20 most recent fills


def test_a_failing_panel_shows_its_error_and_the_rest_of_the_page(client):
    from vnpy_rotation.web.page import render_body

    summary = client.get("/api/summary").json()
    summary["plan"]["strategies"][0]["legs"] = [{"symbol": "510050.SSE"}]  # a leg without its fields
    body = render_body(summary)
    assert "KeyError: &#x27;side&#x27;" in section_html(body, "plan")
    for key in ("risk", "canary", "kpis", "positions", "equity", "alerts", "fills", "orders"):
        assert 'class="err"' not in section_html(body, key)


@pytest.mark.parametrize(("value", "shown"), [
    (110234.5678, "110,234.568"), (110200.0, "110,200"), (1234.5, "1,234.5"), (-25000.25, "-25,000.25"), (5.395, "5.395"),
    (3.0, "3"), (0.0, "0"), (-0.0, "0"), (0.0123456, "0.01235"), (-0.0371, "-0.0371"), (7, "7"), (None, "–")])
def test_numbers_have_thousands_separators_never_an_exponent(value, shown):
    from vnpy_rotation.web.page import number

    assert number(value) == shown


def test_the_token_redirect_keeps_the_query_encoded(serve, trade_run):
    browser = serve(RunFolder(trade_run, kpi_provider=None), token="s3cret")
    first = browser.get("/?token=s3cret&x=a%26b&y=%C3%A9+1")
    assert first.status_code == 303 and first.headers["location"] == "/?x=a%26b&y=%C3%A9+1"


def test_every_answer_has_the_no_store_and_csp_headers(serve, trade_run):
    for path in ("/?token=s3cret", "/api/fills?token=s3cret", "/api/fills", "/", "/fragment"):
        answer = serve(RunFolder(trade_run, kpi_provider=None), token="s3cret").get(
            path, headers={} if "token=" in path else {"Authorization": "Bearer s3cret"})
        assert answer.status_code in (200, 303), path
        assert answer.headers["cache-control"] == "no-store" and "default-src 'self'" in answer.headers[
            "content-security-policy"], path


def test_kpis_from_the_real_kpi_store_are_the_runs_own(serve, home, trade_run):
    """The replay's daemon recorded a KPI snapshot after each session into the home's database; a later replay
    in the same home (other sessions) records its own. The dashboard shows its run's rows only."""
    from peewee import SqliteDatabase

    from vnpy_rotation.ops.kpi_store import kpi_history

    other = home / "other"
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-08-01",
                   "--end", "2024-08-09", "--out", str(other), home=home)
    assert done.returncode == 0, done.stderr
    db = SqliteDatabase(str(home / ".vntrader" / "database.db"))
    mine, theirs = kpi_history(run=trade_run, db=db), kpi_history(run=other, db=db)
    assert mine["date"].max() == pd.Timestamp("2024-07-31") and theirs["date"].max() == pd.Timestamp("2024-08-09")
    client = serve(RunFolder(trade_run, kpi_provider=lambda scope, since: kpi_history(scope, since, db=db)))
    rows = client.get("/api/kpis").json()["rows"]
    latest = mine.sort_values("date", kind="stable").groupby(["scope", "kpi"]).tail(1)
    expected = {(r.scope, r.kpi): (r.date.date().isoformat(), None if np.isnan(r.value) else r.value, r.status)
                for r in latest.itertuples()}
    assert {(r["scope"], r["kpi"]): (r["date"], r["value"], r["status"]) for r in rows} == expected
    assert len(expected) > 3 and all(r["date"] <= "2024-07-31" for r in rows)
    assert {r["scope"] for r in rows} == {"account", "etf_rotation"}
