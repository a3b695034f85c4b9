"""Sweeps and walk-forward on a real Dask LocalCluster (two worker processes on loopback): the same frames as
serial runs, the market scattered once per worker, a worker killed mid-sweep, and ``run.py sweep`` end to end."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from datetime import date

import cloudpickle
import dask
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from dask.utils import parse_timedelta
from distributed import wait

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.sweep import grid, run_chunk, sweep
from vnpy_rotation.data.market_data import MarketData
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.research.cluster import (
    ClusterFailed,
    ClusterSweeper,
    ClusterTarget,
    Submitted,
    open_client,
    parse_cluster,
)
from vnpy_rotation.research.sweep_spec import best_rows, read_sweep_spec, sweep_csv, write_together
from vnpy_rotation.research.walkforward import walk_forward
from vnpy_rotation.research.wf_config import make_spec

COMBOS = grid(lookback=[10, 40], top_n=[1, 3])
SPAN = (date(2020, 1, 1), date(2021, 6, 30))

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers run slow_chunk without importing tests


def slow_chunk(*args):
    """run_chunk, slowed so a worker can be killed while it holds tasks."""
    time.sleep(0.4)
    return run_chunk(*args)


def failing_chunk(*args):
    """A chunk whose backtest raises."""
    raise ValueError("simulated failure\nin a chunk")


@pytest.fixture(scope="module")
def client():
    with open_client(parse_cluster("local:2")) as connected:
        connected.wait_for_workers(2)
        yield connected


@pytest.fixture(scope="module")
def base(bundled_market):
    return {"symbols": list(bundled_market.symbols)}


@pytest.mark.parametrize("text, expected", [
    ("local:2", ClusterTarget(None, 2)), (" local:8 ", ClusterTarget(None, 8)),
    (f"local:{4 * (os.cpu_count() or 1)}", ClusterTarget(None, 4 * (os.cpu_count() or 1))),
    (f"local:{4 * (os.cpu_count() or 1) + 1}", None), ("local:100000", None),
    ("tcp://10.0.0.5:8786", ClusterTarget("tcp://10.0.0.5:8786")),
    ("tcp://scheduler:8786", ClusterTarget("tcp://scheduler:8786")),
    ("tls://[::1]:8786", ClusterTarget("tls://[::1]:8786")),
    ("local:0", None), ("local:", None), ("local:two", None), ("10.0.0.5:8786", None), ("tcp://host", None),
    ("tcp://host:0", None), ("tcp://host:70000", None), ("http://host:8786", None), ("", None)])
def test_parse_cluster(text, expected):
    if expected is None:
        with pytest.raises(InputRejected) as caught:
            parse_cluster(text)
        assert [p.source for p in caught.value.problems] == ["--cluster"]
    else:
        assert parse_cluster(text) == expected


def test_cluster_sweep_equals_serial(client, bundled_market, base):
    config = BacktestConfig()
    sweeper = ClusterSweeper(client)
    for span in (None, SPAN):
        serial = sweep(bundled_market, "momentum_topn", COMBOS, config, base=base, span=span)
        for chunks in (None, 3):  # one chunk per worker thread; uneven chunks
            assert sweeper.sweep(bundled_market, "momentum_topn", COMBOS, config, base, span, chunks).equals(serial)
    assert serial["total_return"].nunique() == len(COMBOS)  # the combinations really differ
    assert sweeper.scatters == 1  # one market, scattered once for every sweep over it
    sweeper.close()


def test_market_is_scattered_once_per_worker(client, bundled_market, base, monkeypatch):
    sweeper = ClusterSweeper(client)
    submitted = sweeper.submit(bundled_market, "momentum_topn", COMBOS, BacktestConfig(), base, SPAN, chunks=4)
    market_key = sweeper.market_future(bundled_market).key
    wait(submitted.futures)  # the scheduler holds finished tasks while their futures live
    dependencies = client.run_on_scheduler(_dependencies, keys=[f.key for f in submitted.futures])
    assert len(dependencies) == 4 and all(deps == [str(market_key)] for deps in dependencies.values())
    frame = sweeper.collect(submitted)
    # every worker holds the one market it was sent, not a copy per task, and keeps it between sweeps: past one
    # cycle of the scheduler's Active Memory Manager (which, when on, drops the copies no task waits for)
    time.sleep(parse_timedelta(dask.config.get("distributed.scheduler.active-memory-manager.interval")) + 1.0)
    held = client.run(lambda dask_worker: sum(isinstance(v, MarketData) for v in dask_worker.data.values()))
    assert sorted(held.values()) == [1, 1]
    assert set(client.who_has(sweeper.market_future(bundled_market))[market_key]) == set(client.nthreads())
    # a resubmitted grid is recognised: the same task keys
    again = sweeper.submit(bundled_market, "momentum_topn", COMBOS, BacktestConfig(), base, SPAN, chunks=4)
    assert [f.key for f in again.futures] == [f.key for f in submitted.futures]
    assert sweeper.collect(again).equals(frame)
    # a client running other code never shares those results
    from vnpy_rotation.research import cluster

    monkeypatch.setattr(cluster, "code_digest", lambda: "0.0.0-other")
    other = sweeper.submit(bundled_market, "momentum_topn", COMBOS, BacktestConfig(), base, SPAN, chunks=4)
    assert not {f.key for f in other.futures} & {f.key for f in submitted.futures}
    assert sweeper.collect(other).equals(frame)
    sweeper.close()


def test_a_sweep_right_after_another_released_the_same_market_keeps_its_copy(client, bundled_market, base):
    """Back-to-back sweepers on one client (a walk-forward's windows, a user's loop): one releasing its copy of
    a market must not take the next one's copy with it (tasks would fail with lost dependencies). The client's
    batched messages to the scheduler (where releases go) are slowed, as on a loaded machine, so a release can
    arrive after the next sweeper's scatter."""
    batched = client.scheduler_comm
    interval, batched.interval = batched.interval, 0.3
    try:
        _sweep_back_to_back(client, bundled_market, base)
    finally:
        batched.interval = interval


def _sweep_back_to_back(client, bundled_market, base):
    released = set()
    for _ in range(4):
        sweeper = ClusterSweeper(client)
        # the scheduler cannot tell a released key re-sent from the release itself, so none is reused
        assert sweeper.market_future(bundled_market).key not in released
        submitted = sweeper.submit(bundled_market, "momentum_topn", COMBOS[:1], BacktestConfig(), base, SPAN,
                                   chunks=1)
        wait(submitted.futures)
        assert [f.status for f in submitted.futures] == ["finished"]
        released.add(sweeper.market_future(bundled_market).key)
        sweeper.close()


def _dependencies(dask_scheduler, keys):
    return {key: sorted(str(d.key) for d in dask_scheduler.tasks[key].dependencies) for key in keys}


def test_rows_of_a_chunk_run_twice_are_kept_once(client, bundled_market, base):
    sweeper = ClusterSweeper(client)
    config = BacktestConfig()
    one = sweeper.submit(bundled_market, "momentum_topn", COMBOS, config, base, SPAN, chunks=2)
    other = sweeper.submit(bundled_market, "momentum_topn", COMBOS[1:], config, base, SPAN, chunks=1)
    both = Submitted(COMBOS, one.futures + other.futures, {**one.chunks, **other.chunks})
    frame = sweeper.collect(both)
    assert frame.equals(sweep(bundled_market, "momentum_topn", COMBOS, config, base=base, span=SPAN))
    sweeper.close()


def test_walkforward_on_the_cluster_equals_serial(client, bundled_market, base):
    spec = make_spec("momentum_topn", base, start=date(2019, 1, 1), end=date(2021, 12, 31), train_years=1,
                     test_years=1, holdout_years=1, grid={"lookback": [10, 40], "top_n": [1, 2]})
    serial = walk_forward(bundled_market, spec)
    sweeper = ClusterSweeper(client)
    clustered = walk_forward(bundled_market, spec, sweeper=sweeper)
    assert len(serial.windows) == 1 and sweeper.scatters == 1
    for a, b in zip(serial.windows, clustered.windows):
        assert b.grid.equals(a.grid) and b.chosen == a.chosen
        assert b.test.result.equity.equals(a.test.result.equity)
    assert clustered.holdout.result.equity.equals(serial.holdout.result.equity)
    assert clustered.deflated == serial.deflated
    sweeper.close()


def test_a_worker_killed_mid_sweep(client, bundled_market, base):
    """The scheduler reruns the dead worker's tasks elsewhere; every combination's row arrives exactly once."""
    combos = grid(lookback=[10, 20, 40], top_n=[1, 2, 3])
    config = BacktestConfig()
    serial = sweep(bundled_market, "momentum_topn", combos, config, base=base, span=SPAN)
    sweeper = ClusterSweeper(client, runner=slow_chunk)
    pids = client.run(os.getpid)
    submitted = sweeper.submit(bundled_market, "momentum_topn", combos, config, base, SPAN, chunks=len(combos))
    killed: list[int] = []
    finished_before: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                finished_before.append(sum(f.done() for f in submitted.futures))
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    frame = sweeper.collect(submitted)
    killer.join()
    done = sum(f.status == "finished" for f in submitted.futures)
    assert killed and finished_before[0] < len(combos) and done == len(combos)  # killed mid-sweep
    assert frame.equals(serial)
    assert not frame.duplicated(["lookback", "top_n"]).any()
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # that worker process is gone
    sweeper.close()


def test_every_worker_holding_the_market_killed(client, bundled_market, base):
    """Scattered data cannot be recovered by the scheduler: the tasks are cancelled. The market is scattered
    again (the nannies restart the workers) and only the chunks without rows rerun; each row arrives once."""
    combos = grid(lookback=[10, 40], top_n=[1, 2])
    config = BacktestConfig()
    serial = sweep(bundled_market, "momentum_topn", combos, config, base=base, span=SPAN)
    sweeper = ClusterSweeper(client, runner=slow_chunk)
    pids = client.run(os.getpid)
    submitted = sweeper.submit(bundled_market, "momentum_topn", combos, config, base, SPAN, chunks=len(combos))
    client.wait_for_workers(2)
    while not any(client.processing().values()):
        time.sleep(0.02)
    for pid in pids.values():  # every holder of the market
        os.kill(pid, signal.SIGKILL)
    frame = sweeper.collect(submitted)
    assert frame.equals(serial) and sweeper.scatters == 2
    sweeper.close()
    client.wait_for_workers(2)


def test_a_task_error_is_one_line(client, bundled_market, base):
    sweeper = ClusterSweeper(client, runner=failing_chunk)
    with pytest.raises(ClusterFailed) as caught:
        sweeper.sweep(bundled_market, "momentum_topn", COMBOS, BacktestConfig(), base, SPAN, chunks=2)
    assert str(caught.value).startswith("--cluster: ") and "\n" not in str(caught.value)
    sweeper.close()


def test_sweep_spec_takes_the_search_space_and_narrows_it(tmp_path):
    spec = read_sweep_spec("vqm", None, None, None, None, ["top_n=10,20"])
    assert spec.grid == {"w_pe": (0.4, 0.5, 0.6, 0.7, 0.8), "top_n": (10, 20)}
    assert spec.grid_source == "vqm.search_space + --grid" and len(spec.combos) == 10
    assert read_sweep_spec("vqm", None, None, None, None, None).grid["top_n"] == (10, 20, 30)
    with pytest.raises(InputRejected) as caught:
        read_sweep_spec("vqm", None, None, None, None, ["top_n=10,many"])
    assert [p.source for p in caught.value.problems] == ["--grid"] and "top_n" in str(caught.value)
    with pytest.raises(InputRejected, match="--grid"):  # no search space and no --grid
        read_sweep_spec("equal_weight", None, None, None, None, None)
    for name in ("etf_rotation", "momentum_topn"):  # the ETF templates declare theirs too
        declared = read_sweep_spec(name, None, None, None, None, None)
        assert declared.grid_source == f"{name}.search_space" and len(declared.combos) > 1
    config = tmp_path / "wf.yaml"  # a walk-forward config's grid is the default, as for the walk-forward
    config.write_text("backtest: {capital: 500000}\nwalkforward: {train_years: 2, grid: {top_n: [1, '2']}}\n")
    spec = read_sweep_spec("momentum_topn", config, None, None, None, ["lookback=10"])
    assert spec.grid == {"top_n": (1, 2), "lookback": (10,)} and spec.run.config.capital == 500_000
    assert spec.grid_source == f"{config}: walkforward.grid + --grid"


@pytest.mark.parametrize("strategy, given, field", [
    ("momentum_topn", "nosuch=1,2", "nosuch"), ("momentum_topn", "top_n=x,y,z", "top_n"),
    ("etf_rotation", "absolute_threshold=0.1,nan", "absolute_threshold"),
    ("etf_rotation", "absolute_threshold=inf", "absolute_threshold"),
    ("momentum_topn", "symbols=510300.SSE,510500.SSE", "symbols")])  # a list: the config's walkforward.grid
def test_one_grid_mistake_is_one_problem(strategy, given, field):
    with pytest.raises(InputRejected) as caught:
        read_sweep_spec(strategy, None, None, None, None, [given])
    assert [(p.source, p.reason.split(":")[0]) for p in caught.value.problems] == [("--grid", field)]


def test_no_grid_names_the_fields_to_grid():
    with pytest.raises(InputRejected) as caught:
        read_sweep_spec("equal_weight", None, None, None, None, None)
    assert [p.source for p in caught.value.problems] == ["--grid"]
    assert caught.value.problems[0].reason.endswith("pool, symbols, rebalance, invested")


def test_sweep_csv_writes_dict_parameters_as_json():
    frame = pd.DataFrame({"factors": [{"mom_60": 1.0}, {"mom_60": 0.5, "mom_20": 0.5}], "top_n": [1, 2],
                          "sharpe": [0.5, 0.25]})
    table = pd.read_csv(io.StringIO(sweep_csv(frame, ["factors", "top_n"])))
    assert [json.loads(text) for text in table["factors"]] == [{"mom_60": 1.0}, {"mom_20": 0.5, "mom_60": 0.5}]
    assert table[["top_n", "sharpe"]].values.tolist() == [[1, 0.5], [2, 0.25]]
    assert sweep_csv(frame.drop(columns="factors"), ["top_n"]) == frame.drop(columns="factors").to_csv(index=False)


def test_sweep_files_are_replaced_together(tmp_path):
    (tmp_path / "sweep.csv").write_text("old")
    (tmp_path / "best.md").write_text("old")
    with pytest.raises(TypeError):  # the second file cannot be written
        write_together(tmp_path, {"sweep.csv": "new", "best.md": None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.md", "sweep.csv"]
    assert (tmp_path / "sweep.csv").read_text() == "old" and (tmp_path / "best.md").read_text() == "old"
    write_together(tmp_path, {"sweep.csv": "new", "best.md": "new"})
    assert (tmp_path / "sweep.csv").read_text() == "new" == (tmp_path / "best.md").read_text()


def test_best_rows_rank_nan_last_and_ties_in_grid_order():
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "sharpe": [0.5, float("nan"), 0.9, 0.5]})
    assert best_rows(frame, "sharpe", 3)["a"].tolist() == [3, 1, 4]
    assert best_rows(frame, "sharpe", 9)["combination"].tolist() == [3, 1, 4, 2]


def test_run_py_sweep_serial_and_on_clusters(runtime_home, tmp_path, client):
    """``run.py sweep`` in this process (its home holds the bundled data): serially, on ``--cluster local:2`` and
    on the module's cluster through its scheduler's address: the same sweep.csv, byte for byte, and an
    experiment row each."""
    from vnpy_rotation.cli.main import main

    client.wait_for_workers(2)
    args = ["sweep", "--strategy", "momentum_topn", "--grid", "lookback=10,40", "--grid", "top_n=1,3",
            "--start", "2020-01-01", "--end", "2021-06-30", "--top", "2", "--home", str(runtime_home)]
    sides = {"serial": [], "local": ["--cluster", "local:2"], "tcp": ["--cluster", client.scheduler.address]}
    for name, cluster in sides.items():
        assert main([*args, *cluster, "--out", str(tmp_path / name)]) == 0
    table = (tmp_path / "serial" / "sweep.csv").read_bytes()
    assert [(tmp_path / name / "sweep.csv").read_bytes() == table for name in sides] == [True] * 3
    frame = pd.read_csv(tmp_path / "serial" / "sweep.csv")
    assert frame[["lookback", "top_n"]].values.tolist() == [[10, 1], [10, 3], [40, 1], [40, 3]]  # grid order
    best = (tmp_path / "tcp" / "best.md").read_text(encoding="utf-8")
    assert len([line for line in best.splitlines() if line.startswith("| ") and "rank" not in line]) == 2
    expected = best_rows(frame, "sharpe", 1).to_dict("records")[0]
    with sqlite3.connect(runtime_home / ".vntrader" / "database.db") as db:
        for name in sides:
            rows = db.execute("SELECT kind, status, results_json FROM rotation_experiment WHERE out_dir = ?",
                              (str((tmp_path / name).absolute()),)).fetchall()
            assert [(kind, status) for kind, status, _ in rows] == [("sweep", "ok")]
            recorded = json.loads(rows[0][2])
            assert recorded["combinations"] == 4
            assert (recorded["best"]["lookback"], recorded["best"]["top_n"]) == (expected["lookback"],
                                                                                 expected["top_n"])


def test_no_scheduler_answered(runtime_home, tmp_path, capsys, monkeypatch):
    """A loopback port nobody listens on: one ``--cluster`` line, exit 2, nothing written."""
    import socket

    from vnpy_rotation.cli.main import main
    from vnpy_rotation.research import cluster

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "out"
    code = main(["sweep", "--strategy", "momentum_topn", "--grid", "lookback=10,40", "--cluster",
                 f"tcp://127.0.0.1:{port}", "--out", str(out), "--home", str(runtime_home)])
    stderr = capsys.readouterr().err
    assert code == 2 and not (out / "sweep.csv").exists()
    assert stderr.count("\n") == 1 and stderr.startswith(f"error: --cluster: tcp://127.0.0.1:{port}")


@pytest.mark.parametrize("command, flag, value", [("sweep", "--cluster", "local:x"),
                                                  ("walkforward", "--cluster", "tcp://nowhere"),
                                                  ("sweep", "--workers", "2"),  # with --cluster: one or the other
                                                  ("sweep", "--grid", "top_n=1,many"),
                                                  ("sweep", "--objective", "luck")])
def test_bad_values_are_one_line_errors(runtime_home, tmp_path, capsys, command, flag, value):
    from vnpy_rotation.cli.main import main

    out = tmp_path / "out"
    cluster = ["--cluster", "local:2"] if flag == "--workers" else []
    code = main([command, "--strategy", "momentum_topn", "--grid", "lookback=10,40", flag, value, *cluster,
                 "--out", str(out), "--home", str(runtime_home)])
    stderr = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert stderr.count("\n") == 1 and stderr.startswith(f"error: {flag}")


def test_compose_services_run_real_commands():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    commands = {name: service["command"] for name, service in compose["services"].items()}
    assert commands["scheduler"][:2] == ["dask", "scheduler"]
    assert commands["worker"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
    assert commands["worker"][commands["worker"].index("--nthreads") + 1] == "1"
    # Dask tcp has no authentication: the scheduler is published on loopback only; --scale sets the workers
    assert compose["services"]["scheduler"]["ports"] == ["127.0.0.1:8786:8786"]
    assert "deploy" not in compose["services"]["worker"]
    trade = commands["paper"]
    assert trade[:4] == ["python", "run.py", "trade", "--gateway"] and trade[4] == "replay"
    from vnpy_rotation.cli.main import build_parser

    build_parser().parse_args(trade[2:])  # the project's own parser accepts the daemon's arguments


def test_a_grid_may_not_vary_what_the_market_is_prepared_from():
    """One sweep prepares one market: VQM's roe basis, index, express stand-in and universe, an ETF rotation's
    pools, a fixed list's symbols take one value per grid (several were silently run on the first's market)."""

    with pytest.raises(InputRejected) as caught:
        read_sweep_spec("vqm", None, None, None, None, ["roe=annualised,full_year", "top_n=10,20"])
    assert [p.source for p in caught.value.problems] == ["--grid"] and "roe" in str(caught.value)
    with pytest.raises(InputRejected, match="index"):
        make_spec("vqm", grid={"index": ["000300.SSE", None]})
    assert read_sweep_spec("vqm", None, None, None, None, ["roe=full_year"]).grid["roe"] == ("full_year",)
    with pytest.raises(InputRejected, match="pools"):
        make_spec("etf_rotation", grid={"pools": [["A_SHARE"], ["QDII"]]})
