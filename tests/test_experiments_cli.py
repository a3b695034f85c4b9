"""The experiment registry end to end on the bundled data: each ``run.py backtest``, ``walkforward`` and
``trade --gateway replay`` records exactly one experiment with its inputs and results, a refused command records
none, ``version create`` links the experiments of its evidence, and ``run.py experiments list|show|compare``."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest
from conftest import fresh_bundled_store, run_cli

from vnpy_rotation.backtest.runner import read_spec, run_backtest
from vnpy_rotation.ops.baseline import data_signature

SPAN = ("--start", "2024-01-02", "--end", "2024-06-28")
EXP_LINE = re.compile(r"experiment (EXP-\d{8}-\d{6}-[0-9a-f]{4})")


def out_json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def experiment_id(done) -> str:
    """The id a command printed on its ``experiment EXP-...`` line (exactly one such line)."""
    assert done.returncode == 0, done.stderr
    [found] = [m.group(1) for line in done.stdout.splitlines() if (m := EXP_LINE.fullmatch(line))]
    return found


def recorded(home) -> list[dict]:
    return out_json(run_cli("experiments", "list", "--limit", "0", "--json", home=home))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("experiments_home")
    (home / "top3.yaml").write_text("strategy: {top_n: 3}\n", encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def backtests(home):
    """Two backtests of etf_rotation over the same half year: the default settings, and top_n 3 from a file."""
    ids = []
    for name, config in (("default", ()), ("top3", ("--config", str(home / "top3.yaml")))):
        done = run_cli("backtest", "--strategy", "etf_rotation", *SPAN, *config, "--out", str(home / name), home=home)
        ids.append(experiment_id(done))
    return ids


def test_each_backtest_records_one_experiment_with_its_inputs(home, backtests):
    rows = recorded(home)
    assert [r["id"] for r in rows] == backtests  # one row per command, in the order they ran
    default, top3 = rows
    assert {r["kind"] for r in rows} == {"backtest"} and {r["status"] for r in rows} == {"ok"}
    assert (default["inputs"]["settings"]["top_n"], top3["inputs"]["settings"]["top_n"]) == (2, 3)
    assert top3["inputs"]["config_sha256"] == hashlib.sha256((home / "top3.yaml").read_bytes()).hexdigest()
    assert default["inputs"]["config_path"] == "" and top3["out_dir"] == str(home / "top3")
    metrics = json.loads((home / "top3" / "metrics.json").read_text())
    assert top3["metrics"] == {k: metrics[k] for k in top3["metrics"]} and top3["metrics"]["sharpe"] == metrics["sharpe"]
    assert (top3["inputs"]["start"], top3["inputs"]["end"]) == (metrics["start"], metrics["end"])
    # the data signature is the one the same backtest computes on the same bars in this process
    spec = read_spec("etf_rotation", home / "top3.yaml", pd.Timestamp(SPAN[1]).date(), pd.Timestamp(SPAN[3]).date(),
                     None)
    run = run_backtest(spec, fresh_bundled_store(), lookahead_cuts=0)
    # of every bar the strategy read, its warm-up before --start included
    assert run.read is not None and run.read.days[0] < run.market.days[0]
    assert top3["inputs"]["bars_hash"] == data_signature(run.read)[1] == default["inputs"]["bars_hash"]
    assert top3["inputs"]["settings_hash"] == hashlib.sha256(
        json.dumps(run.strategy.settings.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        .encode()).hexdigest()


def test_compare_and_show_on_the_command_line(home, backtests):
    default, top3 = backtests
    compared = out_json(run_cli("experiments", "compare", default, top3, "--json", home=home))
    fields = {d["field"]: (d["a"], d["b"]) for d in compared["inputs"]}
    assert fields["settings.top_n"] == (2, 3) and "bars_hash" not in fields and "window.start" not in fields
    sharpe = next(m for m in compared["metrics"] if m["name"] == "sharpe")
    assert sharpe["difference"] == pytest.approx(sharpe["b"] - sharpe["a"])
    shown = out_json(run_cli("experiments", "show", top3[:-1], "--json", home=home))  # a unique prefix
    assert shown["id"] == top3 and shown["versions"] == []
    text = run_cli("experiments", "show", top3, home=home)
    assert text.returncode == 0 and text.stdout.startswith(f"experiment {top3}  (backtest, etf_rotation)")


def test_an_unknown_kind_is_refused_naming_the_kinds(home, backtests):
    done = run_cli("experiments", "list", "--kind", "backtests", home=home)
    assert done.returncode == 2 and "walkforward" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [("show", "EXP-19990101-000000-0000"), ("compare", "EXP-1999", "EXP-2000"),
                                  ("show", "nope")])
def test_an_unknown_id_is_one_line_and_exit_2(home, backtests, args):
    done = run_cli("experiments", *args, home=home)
    assert done.returncode == 2 and done.stderr.startswith("error: experiment: unknown experiment")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("config, span", [
    ("strategy: {top_n: 0}\n", SPAN),
    ("", ("--start", "2025-01-02", "--end", "2025-06-28")),  # after the last stored bar: nothing to trade
], ids=["bad-setting", "window-after-the-data"])
def test_a_refused_backtest_records_nothing(home, backtests, tmp_path, config, span):
    before = recorded(home)
    bad = tmp_path / "bad.yaml"
    bad.write_text(config, encoding="utf-8")
    done = run_cli("backtest", "--strategy", "etf_rotation", *span, "--config", str(bad), "--out",
                   str(tmp_path / "out"), home=home)
    assert done.returncode == 2 and not EXP_LINE.search(done.stdout)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert recorded(home) == before and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def walkforward(home, backtests):
    before = len(recorded(home))
    (home / "base4.yaml").write_text("strategy: {top_n: 4}\n", encoding="utf-8")  # a base the grid overrides
    done = run_cli("walkforward", "--strategy", "etf_rotation", "--start", "2021-01-04", "--train-years", "1",
                   "--grid", "top_n=2,3", "--config", str(home / "base4.yaml"), "--out", str(home / "wf"), home=home)
    wid = experiment_id(done)
    assert len(recorded(home)) == before + 1  # one experiment for the run, not one per combination or window
    return wid


def test_a_walkforward_records_one_experiment(home, walkforward):
    row = next(r for r in recorded(home) if r["id"] == walkforward)
    summary = json.loads((home / "wf" / "summary.json").read_text())
    assert row["kind"] == "walkforward" and row["status"] == "ok"
    assert row["results"]["combinations"] == 2 and row["results"]["best"] == summary["holdout_params"]
    assert row["results"]["summary_sha256"] == hashlib.sha256((home / "wf" / "summary.json").read_bytes()).hexdigest()
    assert row["inputs"]["extra"]["grid"] == {"top_n": [2, 3]} and row["inputs"]["start"] == "2021-01-04"
    holdout = json.loads((home / "wf" / "holdout.json").read_text())["metrics"]
    assert row["metrics"]["sharpe"] == holdout["sharpe"]
    # the row's settings are the chosen ones (what a version of this evidence carries); the base is an input
    assert row["inputs"]["settings"]["top_n"] == summary["holdout_params"]["top_n"] in (2, 3)
    assert row["inputs"]["extra"]["base_settings"]["top_n"] == 4


def test_version_create_links_its_backtest_and_its_walkforward(home, walkforward):
    chosen = json.loads((home / "wf" / "summary.json").read_text())["holdout_params"]["top_n"]
    config = home / f"version_top{chosen}.yaml"
    config.write_text(f"strategy: {{top_n: {chosen}}}\n", encoding="utf-8")
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(config), *SPAN,
                   "--from-walkforward", str(home / "wf"), home=home)
    backtest = experiment_id(done)
    vid = next(line for line in done.stdout.splitlines() if re.fullmatch("[0-9a-f]{12}", line))
    shown = out_json(run_cli("version", "show", vid, "--json", home=home))
    assert shown["experiments"] == [{"id": backtest, "relation": "backtest"},
                                    {"id": walkforward, "relation": "walkforward"}]
    evidence = out_json(run_cli("experiments", "show", backtest, "--json", home=home))
    assert evidence["kind"] == "backtest" and evidence["versions"] == [{"id": vid, "relation": "backtest"}]
    # signed as every experiment is (a plain backtest of the same span read the same bars); the version keeps
    # its own bars_hash, part of its content id
    assert evidence["inputs"]["bars_hash"] == recorded(home)[0]["inputs"]["bars_hash"]
    assert evidence["metrics"]["sharpe"] == shown["metrics"]["sharpe"]
    wf = out_json(run_cli("experiments", "show", walkforward, "--json", home=home))
    assert wf["versions"] == [{"id": vid, "relation": "walkforward"}]


def test_a_replay_records_one_experiment(home, backtests):
    before = len(recorded(home))
    out = home / "replay"
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-06-03", "--end",
                   "2024-06-28", "--out", str(out), home=home)
    rid = experiment_id(done)
    rows = recorded(home)
    assert len(rows) == before + 1
    row = next(r for r in rows if r["id"] == rid)
    equity = pd.read_csv(out / "daily_summary.csv")["equity"]
    assert (row["kind"], row["status"], row["out_dir"]) == ("replay", "ok", str(out))
    assert row["results"]["consistent"] is True and row["results"]["sessions"] == len(equity)
    assert (row["inputs"]["start"], row["inputs"]["end"]) == ("2024-06-03", "2024-06-28")
    # a replay consistent with its backtest records the backtest's metrics and the same data signature
    bid = experiment_id(run_cli("backtest", "--strategy", "etf_rotation", "--start", "2024-06-03", "--end",
                                "2024-06-28", "--out", str(home / "bt_june"), home=home))
    backtest = next(r for r in recorded(home) if r["id"] == bid)
    assert row["metrics"] and set(row["metrics"]) <= set(backtest["metrics"])
    assert row["metrics"] == pytest.approx({k: backtest["metrics"][k] for k in row["metrics"]}, rel=1e-9, abs=1e-12)
    assert row["inputs"]["bars_hash"] == backtest["inputs"]["bars_hash"]
