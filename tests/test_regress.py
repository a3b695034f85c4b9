"""``run.py regress``: the daily regression gate on the bundled data. A champion version of etf_rotation over one
quarter is stored; unchanged data passes (exit 0); a bar revised with ``import --replace`` is a regression naming
that symbol and day as changed data (exit 1); a moved strategy or backtest default names the field; a new code
commit is named, and blamed when it alone changes the results; user mistakes exit 2."""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime

import pandas as pd
import peewee
import pytest
from conftest import BUNDLED, fresh_bundled_store, run_cli
from pydantic import Field

from vnpy_rotation.backtest import runner
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.ops import regress
from vnpy_rotation.ops.baseline import BaselineStore
from vnpy_rotation.ops.regress import RegressThresholds, run_regression, save_with_baseline
from vnpy_rotation.ops.version_store import VersionStore
from vnpy_rotation.ops.versions import VersionRegistry, build_version_run
from vnpy_rotation.strategies.etf_rotation import EtfRotationSettings, EtfRotationStrategy

SPAN = ("--start", "2024-07-01", "--end", "2024-09-30")
AS_OF = date(2024, 10, 8)
CONFIG = "strategy: {}\nbacktest:\n  capital: 1000000\n"


def statuses(out) -> dict[str, tuple[str, str, str]]:
    rows = pd.read_csv(out / "regress.csv", keep_default_na=False, dtype=str)
    return {r.check: (r.status, r.first_day, r.detail) for r in rows.itertuples()}


# -- end to end through run.py --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with the bundled data and an etf_rotation champion version over 2024Q3 (with its baseline)."""
    home = tmp_path_factory.mktemp("regress_home")
    (home / "champion.yaml").write_text(CONFIG, encoding="utf-8")
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(home / "champion.yaml"),
                   *SPAN, home=home)
    assert done.returncode == 0, done.stderr
    vid = next(line for line in done.stdout.splitlines() if re.fullmatch("[0-9a-f]{12}", line))
    assert run_cli("version", "alias", vid, "champion", "--why", "test", home=home).returncode == 0
    return home


def regress_cli(home, out, *extra):
    return run_cli("regress", "--date", AS_OF.isoformat(), "--out", str(out), *extra, home=home)


def test_unchanged_data_passes(home, tmp_path):
    done = regress_cli(home, tmp_path / "r")
    assert done.returncode == 0, done.stdout + done.stderr
    found = statuses(tmp_path / "r")
    assert {k: v[0] for k, v in found.items() if not k.startswith("metric.")} == {
        "config": "ok", "code": "ok", "equity": "ok", "fills": "ok", "data": "ok"}
    assert all(v[0] == "ok" for k, v in found.items() if k.startswith("metric."))
    assert (tmp_path / "r" / "regress.md").is_file()


def test_a_revised_bar_is_a_regression_naming_the_symbol_and_day(home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    # 510050 (held since 2024-07-08) closes 3 % higher on 2024-08-15 than it did; the high follows
    row = next(line for line in (BUNDLED / "etf" / "unadjusted_tdx" / "510050.csv").read_text().splitlines()
               if line.startswith("2024/08/15"))
    day, o, h, low, c, v, t = row.split(",")
    (tmp_path / "510050.csv").write_text(f"{day},{o},{float(h) * 1.03:.3f},{low},{float(c) * 1.03:.3f},{v},{t}\n")
    done = run_cli("import", str(tmp_path / "510050.csv"), "--format", "tdx", "--symbol", "510050.SSE", "--replace",
                   home=copy)
    assert done.returncode == 0, done.stderr
    done = regress_cli(copy, tmp_path / "r")
    assert done.returncode == 1, done.stdout + done.stderr
    found = statuses(tmp_path / "r")
    assert found["data"] == ("info", "2024-08-15", "510050.SSE from 2024-08-15 (1 day)")
    assert found["equity"][:2] == ("differs", "2024-08-15")
    assert found["config"][0] == "ok" and found["code"][0] == "ok"


def test_user_errors_exit_2(home, tmp_path):
    done = run_cli("regress", "--strategy", "vqm", "--date", AS_OF.isoformat(), home=home)
    assert done.returncode == 2 and "vqm" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "thresholds.yaml"
    bad.write_text("regress:\n  equity_rel: -1\n  metrics: {sharp: 0.1}\n", encoding="utf-8")
    done = regress_cli(home, tmp_path / "r", "--config", str(bad))
    assert done.returncode == 2
    assert f"{bad}: regress: equity_rel" in done.stderr and f"{bad}: regress: metrics" in done.stderr
    assert not (tmp_path / "r").exists()
    done = run_cli("regress", "--date", "2024-06-28", "--out", str(tmp_path / "r"), home=home)
    assert done.returncode == 2 and "--date" in done.stderr


# -- in process: moved defaults and code ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stored(runtime_home, tmp_path_factory):
    """The same champion built in this process, in a registry of its own (beside the bundled bars)."""
    folder = tmp_path_factory.mktemp("regress_inproc")
    store = fresh_bundled_store()
    db = peewee.SqliteDatabase(str(folder / "versions.db"))
    registry, baselines = VersionRegistry(VersionStore(db)), BaselineStore(db)
    config = folder / "champion.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    version, run = build_version_run("etf_rotation", config, date(2024, 7, 1), date(2024, 9, 30))
    save_with_baseline(registry, version, run, open_end=False, baselines=baselines, store=store)
    registry.move_alias("etf_rotation", "champion", version.id, "test", "test", datetime(2024, 10, 1))
    return registry, baselines, store, version


def regression(stored, thresholds=RegressThresholds()):
    registry, baselines, store, _ = stored
    report = run_regression(AS_OF, thresholds, registry=registry, store=store, baselines=baselines)
    (check,) = report.checks
    return report.regression, {f.check: f for f in check.findings}, check


def test_in_process_unchanged_passes(stored):
    failed, found, check = regression(stored)
    assert not failed and found["fills"].status == "ok" and check.causes == []


class TopThree(EtfRotationSettings):
    top_n: int = Field(default=3, ge=1)  # the default moved from 2


class LowerCap(BacktestConfig):
    participation_cap: float = Field(default=0.00001, gt=0, le=1)  # the default moved from 0.1


@pytest.mark.parametrize("target, name, value, field, before, after", [
    (EtfRotationStrategy, "Settings", TopThree, "strategy.top_n", "2", "3"),
    (runner, "BacktestConfig", LowerCap, "backtest.participation_cap", "0.1", "1e-05"),
])
def test_a_moved_default_is_a_regression_naming_the_field(stored, monkeypatch, target, name, value, field, before,
                                                          after):
    monkeypatch.setattr(target, name, value)
    failed, found, check = regression(stored)
    assert failed
    assert found["config"].status == "differs"
    assert found["config"].baseline == f"{field}={before}" and found["config"].now == f"{field}={after}"
    assert found["equity"].status == "differs" and found["data"].status == "ok"
    assert check.causes == [f"config default (the stored config validates to other values today: {field})"]
    # reported, not gated, when asked
    failed, found, _ = regression(stored, RegressThresholds(config_default_fails=False))
    assert found["config"].status == "info" and failed  # the results still differ


def test_a_new_commit_is_named_and_blamed_when_it_changes_results(stored, monkeypatch):
    monkeypatch.setattr(regress, "code_identity", lambda: ("deadbeef", ""))
    failed, found, check = regression(stored)
    assert not failed and found["code"].status == "info" and found["code"].now == "deadbeef"
    assert found["code"].baseline == stored[3].code_commit
    original = runner.simulate  # the matcher's code changes: fills reduced to a smaller participation cap

    def changed(market, plan, config, full=None):
        return original(market, plan, config.model_copy(update={"participation_cap": 0.00001}), full)

    monkeypatch.setattr(runner, "simulate", changed)
    failed, found, check = regression(stored)
    assert failed and found["fills"].status == "differs" and found["config"].status == "ok"
    assert check.causes == [f"code (commit {stored[3].code_commit} → deadbeef)"]


def test_a_version_stored_without_a_baseline_compares_equity_and_metrics_only(stored, tmp_path):
    registry, _, store, version = stored
    db = peewee.SqliteDatabase(str(tmp_path / "old.db"))  # a database from before baselines: the version alone
    old, old_baselines = VersionRegistry(VersionStore(db)), BaselineStore(db)
    try:
        old.save(version)
        old.move_alias("etf_rotation", "champion", version.id, "test", "test", datetime(2024, 10, 1))
        report = run_regression(AS_OF, RegressThresholds(), registry=old, store=store, baselines=old_baselines)
        found = {f.check: f for f in report.checks[0].findings}
        assert not report.regression
        assert found["fills"].status == "skipped" and found["equity"].status == "ok"
        assert found["data"].status == "ok" and found["data"].now == version.bars_hash
    finally:  # peewee binds the models to the last database given: back to the module's
        VersionStore(registry.store.db), BaselineStore(registry.store.db)
