"""End to end through ``run.py``: the demo, --home placement, and user mistakes without tracebacks."""

import json
import sqlite3

import pandas as pd
import pytest
from conftest import run_cli


def test_demo_imports_once_and_summarises_pools(tmp_path):
    first = run_cli("demo", home=tmp_path)
    assert first.returncode == 0, first.stderr
    for pool in ("A_SHARE", "QDII", "OTHER", "BENCHMARK"):
        assert pool in first.stdout
    db = tmp_path / ".vntrader" / "database.db"
    assert db.exists() and (tmp_path / ".vntrader" / "vt_setting.json").exists()
    with sqlite3.connect(db) as con:
        bars = con.execute("select count(*) from dbbardata").fetchone()[0]
        symbols = con.execute("select count(distinct symbol) from dbbardata").fetchone()[0]
        split = con.execute("select factor from rotation_adjustment where symbol='159941' "
                            "and ex_date='2022-07-05'").fetchone()
    assert symbols == 15 + 55 and bars > 25_000 + 55 * 2_800  # ETFs and indices, the CSI 300 stock subset
    assert split is not None and 3.5 < split[0] < 4.5  # the 2022-07-05 unit split, about 1:4
    # The rotation template's backtest: its files, with both checks passed.
    report = tmp_path / "demo_output" / "etf_rotation"
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["lookahead_ok"] and metrics["identities_ok"] and metrics["trade_count"] > 0
    assert (report / "report.html").exists() and (report / "pool_metrics_summary.csv").exists()
    assert str(report / "report.html") in first.stdout
    # VQM on the bundled stocks: point-in-time fundamentals, trades with their reasons.
    vqm = tmp_path / "demo_output" / "vqm"
    metrics = json.loads((vqm / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["lookahead_ok"] and metrics["identities_ok"] and metrics["trade_count"] > 100
    assert metrics["data_warnings"]  # the bundled universe is a survivorship-biased subset, and says so
    # The operating routine on the replay: the daemon's KPI pages, the attribution, the weekly audit.
    output = tmp_path / "demo_output"
    assert sorted((output / "replay" / "kpi").glob("kpi_*.json"))
    summary = pd.read_csv(output / "attribution" / "attribution_summary.csv")
    actual = summary[summary["group"] == "actual"].set_index("component")["cny"]
    equity = pd.read_csv(output / "replay" / "daily_summary.csv")["equity"]
    assert actual["total (equity change)"] == pytest.approx(equity.iloc[-1] - equity.iloc[0], abs=0.01)
    targets = pd.read_csv(output / "audit" / "targets.csv").set_index("name")["status"]
    assert targets["availability"] == "PASS" and (output / "audit" / "index.md").exists()

    second = run_cli("demo", home=tmp_path)
    assert second.returncode == 0
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from dbbardata").fetchone()[0] == bars


def test_home_before_or_after_the_subcommand(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    home = tmp_path / "h"
    home.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "import",
                           str(ROOT / "vnpy_rotation/bundled/index/h00300.csv")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (home / ".vntrader" / "database.db").exists()
    assert not (tmp_path / ".vntrader").exists()


def test_missing_file_is_a_clear_error(tmp_path):
    done = run_cli("import", str(tmp_path / "nope.csv"), home=tmp_path)
    assert done.returncode == 2
    assert "nope.csv" in done.stderr and "Traceback" not in done.stderr


def test_bad_date_argument_is_a_usage_error(tmp_path):
    done = run_cli("import", str(tmp_path), "--start", "2024-13-01", home=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize("chosen, expected", [(None, "system"), ("mimalloc", "mimalloc")])
def test_commands_give_arrow_buffers_to_the_system_allocator_unless_the_user_chose_one(tmp_path, chosen, expected):
    """mimalloc, Arrow's default, keeps the pages pandas' string columns freed (≈ 24 MB more at a backtest's peak):
    ``run.py`` hands Arrow's buffers to the system allocator, and a pool the user names is kept."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    script = ("import sys; from vnpy_rotation.cli.main import main; code = main(sys.argv[1:]); import pandas, pyarrow; "
              "print(code, pyarrow.default_memory_pool().backend_name)")
    done = subprocess.run([sys.executable, "-c", script, "version", "list", "--home", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", expected]
