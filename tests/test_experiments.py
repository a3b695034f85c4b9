"""The experiment registry on its own: insert-only rows, what :func:`track` records for a run that ends, fails or is
refused, a database that fails, comparisons, version links, and the MLflow sink against a real local file store."""

from __future__ import annotations

import builtins
import sqlite3
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
import peewee
import pytest
from scenario_market import bar, flat, make_panels

from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.errors import InputRejected, Problem
from vnpy_rotation.ops.baseline import data_signature
from vnpy_rotation.ops.experiment_store import ExperimentStore
from vnpy_rotation.ops.experiments import ExperimentInputs, ExperimentRegistry, compare, make_inputs, track
from vnpy_rotation.ops.mlflow_sink import MLFLOW_ENV, log_to_mlflow, mlflow_uri, send_to_sink

T0 = datetime(2024, 10, 8, 7, 30, tzinfo=timezone.utc)
DAYS = ["2023-08-21", "2023-08-22", "2023-08-23"]


def clock(*moments: datetime):
    """A ``now`` for :func:`track` returning ``moments`` in turn (start, then finish)."""
    queue = list(moments)
    return lambda: queue.pop(0)


def market(second_close: float = 4.1):
    return build_market_data(make_panels(DAYS, {"510300.SSE": [flat(4.0), flat(second_close), flat(4.2)],
                                                "510500.SSE": [flat(6.0), flat(6.1), None]}))


@pytest.fixture
def registry(tmp_path):
    return ExperimentRegistry(ExperimentStore(peewee.SqliteDatabase(str(tmp_path / "experiments.db"))))


def run(registry, kind="backtest", inputs=None, metrics=None, start=T0, seconds=12.5, **kwargs):
    """One tracked run that ends normally; returns its tracker."""
    printed: list[str] = []
    with track(kind, inputs, registry=registry, output=printed.append, now=clock(start, start + timedelta(seconds=seconds)),
               **kwargs) as experiment:
        experiment.metrics = metrics or {"sharpe": 1.5, "max_drawdown": -0.1}
    assert printed == [f"experiment {experiment.id}"]
    return experiment


# -- what a run records ---------------------------------------------------------------------------------------
def test_a_run_records_one_row_with_its_inputs_and_results(registry, tmp_path):
    inputs = make_inputs("etf_rotation", {"top_n": 2}, None, market(), backtest={"capital": 1_000_000.0})
    tracked = run(registry, inputs=inputs, out=tmp_path / "bt", command="run.py backtest --strategy etf_rotation")
    [stored] = registry.list()
    assert stored == registry.get(tracked.id)
    assert (stored.kind, stored.status, stored.error, stored.exit_code) == ("backtest", "ok", "", 0)
    assert (stored.started_at, stored.finished_at, stored.duration_s) == (
        "2024-10-08T07:30:00+00:00", "2024-10-08T07:30:12+00:00", 12.5)
    assert stored.inputs.settings == {"top_n": 2} and stored.inputs.extra == {"backtest": {"capital": 1_000_000.0}}
    assert (stored.inputs.start, stored.inputs.end, stored.inputs.bars_symbols) == ("2023-08-21", "2023-08-23", 2)
    assert stored.inputs.bars_hash == data_signature(market())[1]
    assert stored.metrics == {"sharpe": 1.5, "max_drawdown": -0.1} and stored.out_dir == str(tmp_path / "bt")
    assert stored.command == "run.py backtest --strategy etf_rotation"
    assert tracked.id.startswith("EXP-20241008-073000-") and len(tracked.id) == len("EXP-20241008-073000-abcd")


def test_ids_sort_by_start_and_a_taken_id_draws_another(registry):
    later = run(registry, start=T0 + timedelta(minutes=5))
    first = run(registry, start=T0)
    assert [e.id for e in registry.list()] == sorted([first.id, later.id])
    again = registry.record(registry.get(first.id))  # the same id once more: redrawn, never overwritten
    assert again.id != first.id and again.id.startswith("EXP-20241008-073000-")
    assert len(registry.list()) == 3


def test_a_failed_run_records_a_failed_row_and_raises(registry):
    printed: list[str] = []
    with pytest.raises(RuntimeError, match="the strategy did not initialise"):
        with track("replay", ExperimentInputs("etf_rotation"), registry=registry, output=printed.append,
                   now=clock(T0, T0 + timedelta(seconds=3))) as experiment:
            experiment.metrics = {"sharpe": 9.9}  # gathered before the failure: kept with the failed row
            raise RuntimeError("the strategy did not initialise")
    [stored] = registry.list()
    assert (stored.status, stored.exit_code, stored.error) == ("failed", None,
                                                               "RuntimeError: the strategy did not initialise")
    assert stored.id == experiment.id and printed == [f"experiment {experiment.id} (failed)"]


def test_a_failed_run_records_the_inputs_known_at_its_start(registry):
    from datetime import date

    from vnpy_rotation.ops.experiments import start_inputs

    given = start_inputs("etf_rotation", {"top_n": 3}, None, date(2024, 1, 2), date(2024, 6, 28),
                         backtest={"capital": 500_000.0})
    with pytest.raises(RuntimeError):
        with track("backtest", given, registry=registry, output=lambda _: None, now=clock(T0, T0)):
            raise RuntimeError("half-way")
    [stored] = registry.list()
    assert (stored.status, stored.strategy, stored.inputs.settings["top_n"]) == ("failed", "etf_rotation", 3)
    assert (stored.inputs.start, stored.inputs.end) == ("2024-01-02", "2024-06-28")
    assert stored.inputs.extra["backtest"] == {"capital": 500_000.0} and stored.inputs.code_commit


def test_the_pools_file_read_is_a_recorded_input(registry, tmp_path):
    """The default pools file (no setting names it) and a named one: path and SHA-256; an edit shows in compare."""
    import hashlib

    from vnpy_rotation.ops.experiments import start_inputs
    from vnpy_rotation.rotation.pools import pools_path

    default = pools_path(None)
    files = start_inputs("etf_rotation", {}, None, None, None).extra["files"]
    assert files == {"pools_file": {"path": str(default), "sha256": hashlib.sha256(default.read_bytes()).hexdigest()}}
    edited = tmp_path / "pools.yaml"
    edited.write_text(default.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    a = run(registry, inputs=start_inputs("etf_rotation", {}, None, None, None))
    b = run(registry, inputs=start_inputs("etf_rotation", {}, None, None, None), start=T0 + timedelta(seconds=1))
    c = run(registry, inputs=start_inputs("etf_rotation", {"pools_file": str(edited)}, None, None, None),
            start=T0 + timedelta(seconds=2))
    assert compare(registry.get(a.id), registry.get(b.id))[0] == []
    changed = {d.field for d in compare(registry.get(a.id), registry.get(c.id))[0]}
    assert {"inputs.files.pools_file.sha256", "inputs.files.pools_file.path"} <= changed


def test_a_refused_input_records_nothing(registry):
    with pytest.raises(InputRejected):
        with track("backtest", registry=registry, output=lambda _: None):
            raise InputRejected(Problem("x.yaml", 3, "strategy: top_n: must be at least 1"))
    assert registry.list() == []


def test_a_failing_database_only_warns(registry):
    class Broken:
        def record(self, experiment):
            raise peewee.OperationalError("database is locked")

    printed, warned = [], []
    with track("backtest", registry=Broken(), output=printed.append, warn=warned.append) as experiment:
        experiment.exit_code = 0
    assert printed == [] and not experiment.recorded
    assert warned == [f"warning: experiment {experiment.id} not recorded: OperationalError: database is locked"]


def test_a_problem_gathering_results_does_not_fail_the_run(registry, capsys):
    with track("sweep", ExperimentInputs("etf_rotation"), registry=registry, output=lambda _: None) as experiment:
        experiment.sweep_done(None)  # not a frame: the recording's problem, not the run's
    [stored] = registry.list()
    assert stored.status == "ok" and stored.results["recording_problem"].startswith("sweep_done: AttributeError")


def test_a_sweep_records_its_best_row_and_the_number_of_combinations(registry):
    frame = pd.DataFrame({"top_n": [1, 2, 3], "sharpe": [0.4, float("nan"), 0.9], "annual_return": [0.1, 0.3, 0.2]})
    with track("sweep", ExperimentInputs("etf_rotation"), registry=registry, output=lambda _: None) as experiment:
        experiment.sweep_done(frame)
    [stored] = registry.list(kind="sweep")
    assert stored.results == {"combinations": 3, "best": {"top_n": 3, "sharpe": 0.9, "annual_return": 0.2},
                              "objective": "sharpe"}
    assert stored.metrics == {"annual_return": 0.2, "sharpe": 0.9}


# -- immutability ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", ["UPDATE rotation_experiment SET status = 'ok'", "DELETE FROM rotation_experiment",
                                 "UPDATE rotation_experiment_link SET relation = 'x'",
                                 "DELETE FROM rotation_experiment_link"])
def test_the_database_refuses_edits_of_experiments_and_links(registry, tmp_path, sql):
    tracked = run(registry)
    registry.link("aaaa00000001", tracked.id, "backtest", now=T0)
    with sqlite3.connect(tmp_path / "experiments.db") as direct:  # a hand-written SQL edit, outside the project
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            direct.execute(sql)
    with pytest.raises(peewee.IntegrityError):
        registry.store.db.execute_sql(sql)
    assert registry.get(tracked.id).status == "ok" and registry.links_of_version("aaaa00000001") == [
        (tracked.id, "backtest")]


# -- queries and links ----------------------------------------------------------------------------------------
def test_list_filters_and_links_to_versions(registry):
    a = run(registry, "backtest", ExperimentInputs("etf_rotation"), start=T0)
    b = run(registry, "walkforward", ExperimentInputs("etf_rotation"), start=T0 + timedelta(days=1))
    c = run(registry, "backtest", ExperimentInputs("vqm"), start=T0 + timedelta(days=2))
    ids = lambda found: [e.id for e in found]  # noqa: E731
    assert ids(registry.list(kind="backtest")) == [a.id, c.id]
    assert ids(registry.list(strategy="etf_rotation")) == [a.id, b.id]
    assert ids(registry.list(since=(T0 + timedelta(days=1)).date())) == [b.id, c.id]
    assert ids(registry.list(since=T0 + timedelta(hours=1))) == [b.id, c.id]
    registry.link("aaaa00000001", b.id, "walkforward", now=T0)
    registry.link("aaaa00000001", a.id, "backtest", now=T0)
    registry.link("aaaa00000001", a.id, "backtest", now=T0)  # already linked: not repeated
    assert ids(registry.for_version("aaaa00000001")) == [b.id, a.id]
    assert registry.versions_of(a.id) == [("aaaa00000001", "backtest")] and registry.for_version("bbbb") == []
    assert registry.get(a.id[:-2]) == registry.get(a.id)  # a unique prefix
    with pytest.raises(InputRejected, match="unknown experiment"):
        registry.link("aaaa00000001", "EXP-19990101-000000-0000", "backtest")


@pytest.mark.parametrize("ref, reason", [("EXP-2024", "ambiguous"), ("EXP-1999", "unknown"), ("EXP", "unknown")])
def test_an_unknown_or_ambiguous_id_is_refused(registry, ref, reason):
    run(registry, start=T0)
    run(registry, start=T0 + timedelta(seconds=1))
    with pytest.raises(InputRejected, match=reason):
        registry.get(ref)


def test_compare_shows_a_changed_setting_a_changed_data_signature_and_metrics(registry):
    a = run(registry, inputs=make_inputs("etf_rotation", {"top_n": 2, "buffer": 1}, None, market(4.1)),
            metrics={"sharpe": 1.25, "trade_count": 10, "benchmark": "000300.SSE"})
    b = run(registry, inputs=make_inputs("etf_rotation", {"top_n": 3, "buffer": 1}, None, market(4.15)),
            metrics={"sharpe": 0.75, "trade_count": 14, "benchmark": "000300.SSE"})
    inputs, metrics = compare(registry.get(a.id), registry.get(b.id))
    changed = {d.field: (d.a, d.b) for d in inputs}
    assert set(changed) == {"bars_hash", "settings_hash", "settings.top_n"}
    assert changed["settings.top_n"] == (2, 3)
    assert changed["bars_hash"] == (data_signature(market(4.1))[1], data_signature(market(4.15))[1])
    assert [(m.name, m.a, m.b, m.difference) for m in metrics] == [
        ("benchmark", "000300.SSE", "000300.SSE", None), ("sharpe", 1.25, 0.75, -0.5), ("trade_count", 10, 14, 4.0)]


def bars_of(second: object = None, factor: float = 1.0):
    """Two ETFs over three days; ``second`` replaces 510300's second bar, ``factor`` its last adjustment factor."""
    first = [flat(4.0), second or flat(4.1), flat(4.2)]
    return build_market_data(make_panels(DAYS, {"510300.SSE": first, "510500.SSE": [flat(6.0), flat(6.1), flat(6.2)]},
                                         factor={"510300.SSE": [1.0, 1.0, factor], "510500.SSE": [1.0] * 3}))


@pytest.mark.parametrize("changed", [
    bars_of(bar(4.2, 4.2, 4.1, 4.1)),  # the open fills use
    bars_of(bar(4.1, 4.3, 4.1, 4.1)),  # the high
    bars_of(bar(4.1, 4.1, 4.0, 4.1)),  # the low
    bars_of(flat(4.1, volume=2_000_000.0)),  # the volume (participation caps)
    bars_of(factor=1.1),  # an adjustment factor
], ids=["open", "high", "low", "volume", "factor"])
def test_the_data_signature_covers_every_field_a_run_reads(changed):
    assert data_signature(changed) != data_signature(bars_of())
    assert data_signature(bars_of()) == data_signature(bars_of())


def test_a_backtest_signs_the_warm_up_it_read_as_a_replay_does():
    """The same bars read give the same signature whichever kind of run read them: a backtest's inputs sign
    everything its strategy read (warm-up included), not only its traded window."""
    from types import SimpleNamespace

    from vnpy_rotation.ops.experiments import backtest_inputs, make_inputs

    read, revised = bars_of(), bars_of(bar(4.2, 4.2, 4.1, 4.1))  # differ on the warm-up day 2023-08-22 only
    traded = read.window(pd.Timestamp("2023-08-23").date(), None)

    def backtest(full):
        spec = SimpleNamespace(strategy_name="etf_rotation", config=SimpleNamespace(model_dump=lambda mode: {}),
                               benchmark=())
        strategy = SimpleNamespace(settings=SimpleNamespace(model_dump=lambda mode: {"top_n": 2}))
        return SimpleNamespace(spec=spec, strategy=strategy, market=full.window(traded.days[0].date(), None), read=full)

    a, b = backtest_inputs(backtest(read), None), backtest_inputs(backtest(revised), None)
    assert (a.start, a.end) == ("2023-08-23", "2023-08-23")
    assert a.bars_hash != b.bars_hash
    assert a.bars_hash == make_inputs("etf_rotation", {"top_n": 2}, None, read, traded).bars_hash


# -- the MLflow sink ------------------------------------------------------------------------------------------
def test_the_mlflow_sink_logs_a_run_a_local_file_store_reads_back(registry, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # log_to_mlflow sets it too; restored after the test
    uri = (tmp_path / "mlruns").as_uri()
    tracked = run(registry, inputs=make_inputs("etf_rotation", {"top_n": 2}, None, market(),
                                                backtest={"capital": 1_000_000.0}),
                  metrics={"sharpe": 1.5, "max_drawdown": -0.1, "benchmark": "000300.SSE", "calmar": None},
                  out=tmp_path / "bt")
    experiment = registry.get(tracked.id)
    run_id = log_to_mlflow(experiment, uri)
    stored = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert stored.info.run_name == tracked.id and stored.info.status == "FINISHED"
    assert stored.data.metrics == {"sharpe": 1.5, "max_drawdown": -0.1}
    assert stored.data.params["settings.top_n"] == "2" and stored.data.params["inputs.backtest.capital"] == "1000000.0"
    assert stored.data.params["bars_hash"] == experiment.inputs.bars_hash
    assert {k: stored.data.tags[k] for k in ("kind", "experiment_id", "code_commit", "out_dir")} == {
        "kind": "backtest", "experiment_id": tracked.id, "code_commit": experiment.inputs.code_commit,
        "out_dir": str(tmp_path / "bt")}
    assert not (tmp_path / "mlruns" / "bt").exists()  # the output folder is a tag, never copied


def test_the_sink_is_configured_by_the_environment(registry, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv(MLFLOW_ENV, uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert mlflow_uri() == uri
    tracked = run(registry)  # recorded, then sent by track itself
    client = MlflowClient(tracking_uri=uri)
    [found] = client.search_runs([client.get_experiment_by_name("vnpy_rotation").experiment_id])
    assert found.data.tags["experiment_id"] == tracked.id and found.data.metrics["sharpe"] == 1.5


def test_a_configured_sink_without_mlflow_is_one_line_naming_the_setting(registry, monkeypatch):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    problem = send_to_sink(registry.get(run(registry).id), uri="file:///tmp/nowhere")
    assert problem.startswith(f"error: the MLflow sink is configured ({MLFLOW_ENV} / experiments.mlflow_uri")
    assert "\n" not in problem and "pip install" in problem
    monkeypatch.delenv(MLFLOW_ENV, raising=False)
    assert send_to_sink(registry.get(registry.list()[0].id)) == ""  # nothing configured: nothing to do


def test_an_unreachable_sink_server_warns_within_seconds(registry, monkeypatch):
    """Nothing listens on port 1 of loopback: the row is in the database and the sink's problem is one warning,
    in seconds (MLflow's own defaults retry for about four minutes)."""
    import time

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VNPY_ROTATION_MLFLOW_URI", "http://127.0.0.1:1")
    warnings: list[str] = []
    began = time.monotonic()
    with track("backtest", ExperimentInputs("etf_rotation"), registry=registry, output=lambda _: None,
               warn=warnings.append, now=clock(T0, T0)):
        pass
    assert time.monotonic() - began < 15
    assert len(warnings) == 1 and len(registry.list()) == 1
