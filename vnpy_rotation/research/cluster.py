"""Sweeps and walk-forward train grids on a Dask distributed cluster (``--cluster tcp://HOST:PORT|local:N``).

A ``concurrent.futures`` executor (``Client.get_executor()`` included) pickles the market into every task.
Here the market panel is scattered to every worker once (``Client.scatter(..., broadcast=True)``) and each
task receives only a reference to it, a chunk of combinations and the span; the worker cuts the span's
market itself. Each task's key is derived from what it computes (the market's data token, the strategy,
its base settings, the backtest config, the span and the chunk's combinations), so a task resubmitted with
the same inputs is recognised by the scheduler, and the rows gathered are deduplicated by combination and
put back in grid order: the frame equals the serial :func:`~vnpy_rotation.backtest.sweep.sweep`'s.

When a worker dies mid-sweep the scheduler reruns its tasks on the others (the market has replicas on
every worker); a chunk that runs twice still yields each combination's row once. When every worker holding the
market dies (a one-worker cluster whose nanny restarts it), the scheduler cannot recover scattered data and
cancels the tasks: the market is scattered again from this process and only the chunks without rows are
resubmitted, at most :attr:`ClusterSweeper.retries` times; then, or when a task raises, the sweep stops with one
``--cluster: ...`` line (:class:`ClusterFailed`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..backtest.config import BacktestConfig
from ..backtest.sweep import Span, run_chunk
from ..data.market_data import MarketData
from ..errors import InputRejected, Problem, RotationError

if TYPE_CHECKING:
    from distributed import Client, Future

ChunkRunner = Callable[..., list[dict[str, Any]]]  # run_chunk's signature
CONNECT_TIMEOUT = "10s"  # how long a client waits for a scheduler before refusing the address
WORKER_TIMEOUT = "30s"  # how long it waits for a first worker to join a scheduler that has none
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+):(\d{1,5})")
_LOCAL = re.compile(r"local:(\d+)")


class ClusterFailed(RotationError):
    """The cluster could not finish the grid (a task raised, or the market was lost too often): one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"--cluster: {' '.join(reason.split())}")


@dataclass(frozen=True)
class ClusterTarget:
    """Where the work goes: a running scheduler (``address``), or a LocalCluster of ``workers`` processes."""

    address: str | None
    workers: int = 0

    def __str__(self) -> str:
        return self.address or f"local:{self.workers}"


def max_local_workers() -> int:
    """The most ``local:N`` worker processes started here: 4 per CPU (more only thrash)."""
    return 4 * (os.cpu_count() or 1)


def parse_cluster(text: str, flag: str = "--cluster") -> ClusterTarget:
    """``tcp://host:8786`` (or ``tls://``) or ``local:N``; anything else is refused naming ``flag``."""
    text = text.strip()
    local = _LOCAL.fullmatch(text)
    if local:
        if int(local.group(1)) < 1:
            raise InputRejected(Problem(flag, None, f"{text!r}: local:N needs at least 1 worker"))
        if int(local.group(1)) > max_local_workers():
            raise InputRejected(Problem(flag, None, f"{text!r}: at most local:{max_local_workers()} on this machine "
                                        f"({os.cpu_count() or 1} CPUs; each worker is a process with the market)"))
        return ClusterTarget(None, int(local.group(1)))
    address = _ADDRESS.fullmatch(text)
    if not address or not 0 < int(address.group(3)) < 65536:
        raise InputRejected(Problem(flag, None, f"{text!r}: expected tcp://HOST:PORT (a Dask scheduler, e.g. "
                                    "tcp://10.0.0.5:8786) or local:N (N worker processes on this machine)"))
    return ClusterTarget(text)


# Where a scheduler reads whether its Active Memory Manager starts (see open_client).
AMM_SETTING = "distributed.scheduler.active-memory-manager.start"


@contextmanager
def open_client(target: ClusterTarget, flag: str = "--cluster") -> Iterator[Client]:
    """A connected ``distributed.Client``; for ``local:N`` a LocalCluster of N single-threaded worker
    processes on loopback (no dashboard), shut down when the block ends."""
    import dask
    from distributed import Client, LocalCluster

    if target.address is None:
        # No dashboard; the scheduler's HTTP endpoint (health, metrics) on a free loopback port, not 8787. The
        # Active Memory Manager is off: its ReduceReplicas policy drops every copy of a key but one once no task
        # waits on it (every 2 s), so the market broadcast to each worker would be dropped between a sweep's
        # windows and copied worker to worker again for the next task.
        with dask.config.set({AMM_SETTING: False}), \
                LocalCluster(n_workers=target.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
                             ) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(target.address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputRejected(Problem(flag, None, f"{target.address}: no Dask scheduler answered "
                                    f"({type(exc).__name__}: {exc})")) from None
    with client:
        try:  # a scheduler without workers would queue the tasks forever
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError:
            raise InputRejected(Problem(flag, None, f"{target.address}: the scheduler has no workers (none joined "
                                        f"within {WORKER_TIMEOUT}); start some with dask worker "
                                        f"{target.address} --nthreads 1")) from None
        yield client


def combo_key(combo: dict[str, Any]) -> str:
    """The identity of one combination (its parameters, order-independent)."""
    return json.dumps(combo, sort_keys=True, default=str)


def chunk_task(market: MarketData, strategy_name: str, base: dict[str, Any], combos: list[dict[str, Any]],
               config: BacktestConfig, span: Span | None, runner: ChunkRunner = run_chunk) -> list[dict[str, Any]]:
    """One task on a worker: ``market`` is the scattered panel, cut here to what the span's decisions may read
    (as :func:`~vnpy_rotation.backtest.sweep.sweep` cuts it before its chunks), then ``runner`` runs the chunk."""
    if span is not None:
        market = market.window(None, span[1])
    return runner(market, strategy_name, base, combos, config, span)


@dataclass(frozen=True)
class Submitted:
    """The tasks of one grid on the cluster: each future with the combinations it runs."""

    combos: list[dict[str, Any]]
    futures: list[Future]
    chunks: dict[str, list[dict[str, Any]]]  # task key -> its combinations
    # what was submitted (market, strategy, config, base, span), to resubmit chunks whose market was lost
    request: tuple[MarketData, str, BacktestConfig, dict[str, Any], Span | None] | None = None


class ClusterSweeper:
    """Runs grids on ``client``'s workers. Each market is scattered to every worker once and stays there until
    :meth:`close` (a walk-forward sweeps every train window over one scattered market).

    ``chunks_per_worker`` tasks per worker thread (default 1): the runs of one chunk share a
    :class:`~vnpy_rotation.data.market_data.MarketMemo` (factor panels, ranks), so every extra chunk recomputes
    them; more chunks balance uneven workers and bound what a dead worker's loss reruns. ``runner`` is the chunk
    body (:func:`~vnpy_rotation.backtest.sweep.run_chunk`; tests may wrap it).
    """

    retries = 2  # how many times a grid whose scattered market was lost is resubmitted

    def __init__(self, client: Client, chunks_per_worker: int = 1, runner: ChunkRunner = run_chunk) -> None:
        self.client = client
        self.chunks_per_worker = chunks_per_worker
        self.runner = runner
        self._scattered: list[tuple[MarketData, Future, str]] = []  # market, its scattered copy, its data token
        self.scatters = 0  # how many markets were sent to the workers

    def market_future(self, market: MarketData) -> Future:
        """The scattered ``market`` (scattered now if this object was not yet)."""
        return self._scatter(market)[0]

    def _scatter(self, market: MarketData) -> tuple[Future, str]:
        """``market``'s scattered copy and its data token. Each scatter gets a fresh key: a key derived from
        the data (dask's default) can be forgotten by the scheduler when another sweeper has just released the
        same data, and the tasks then fail with lost dependencies. The token names the data in the task keys."""
        for held, future, token in self._scattered:
            if held is market:
                return future, token
        from dask.base import tokenize

        token = tokenize(market)
        future = self.client.scatter(market, broadcast=True, hash=False)
        self._scattered.append((market, future, token))
        self.scatters += 1
        return future, token

    def forget(self, market: MarketData) -> None:
        """Drop ``market``'s scattered copy (lost with its workers): the next use scatters it again."""
        for entry in list(self._scattered):
            if entry[0] is market:
                entry[1].release()
                self._scattered.remove(entry)

    def submit(self, market: MarketData, strategy_name: str, combos: list[dict[str, Any]], config: BacktestConfig,
               base: dict[str, Any] | None = None, span: Span | None = None, chunks: int | None = None) -> Submitted:
        """Send the grid's chunks to the cluster (the market once); gather them with :meth:`collect`."""
        base = base or {}
        threads = max(1, sum(self.client.nthreads().values()))
        size = max(1, math.ceil(len(combos) / (chunks or threads * self.chunks_per_worker)))
        pieces = [combos[k:k + size] for k in range(0, len(combos), size)]
        return self._submit_chunks(market, strategy_name, config, base, span, pieces, list(combos))

    def _submit_chunks(self, market: MarketData, strategy_name: str, config: BacktestConfig, base: dict[str, Any],
                       span: Span | None, pieces: list[list[dict[str, Any]]], combos: list[dict[str, Any]]
                       ) -> Submitted:
        scattered, token = self._scatter(market)
        identity = json.dumps({"code": code_digest(), "market": token, "strategy": strategy_name, "base": base,
                               "config": config.model_dump(mode="json"), "runner": _name(self.runner),
                               "span": None if span is None else [str(d) for d in span]}, sort_keys=True, default=str)
        futures, chunks_by_key = [], {}
        for chunk in pieces:
            digest = hashlib.sha256((identity + "|" + "|".join(map(combo_key, chunk))).encode()).hexdigest()
            key = f"sweep-chunk-{digest[:32]}"
            chunks_by_key[key] = chunk
            futures.append(self.client.submit(chunk_task, scattered, strategy_name, base, chunk, config, span,
                                              self.runner, key=key))
        return Submitted(combos, futures, chunks_by_key, (market, strategy_name, config, base, span))

    def collect(self, submitted: Submitted) -> pd.DataFrame:
        """The rows as tasks finish, each combination's once, in grid order. Chunks cancelled because their
        market was lost are resubmitted over a market scattered again; a task's error stops the sweep."""
        from distributed import as_completed

        rows: dict[str, dict[str, Any]] = {}
        futures, chunks = list(submitted.futures), dict(submitted.chunks)
        for attempt in range(self.retries + 1):
            lost: list[Future] = []
            for future in as_completed(futures):
                if future.status == "finished":
                    for combo, row in zip(chunks[future.key], future.result()):
                        rows.setdefault(combo_key(combo), row)  # a chunk Dask ran twice adds nothing
                elif future.status == "error":
                    error = future.exception()
                    raise ClusterFailed(f"a task failed: {type(error).__name__}: {error}")
                else:  # cancelled: the scattered market it needs was lost with every worker holding it
                    lost.append(future)
            missing = [c for c in submitted.combos if combo_key(c) not in rows]
            if not missing:
                break
            if submitted.request is None or attempt == self.retries:
                raise ClusterFailed(f"no result for {len(missing)} of {len(submitted.combos)} combinations after "
                                    f"{attempt + 1} attempts (workers lost the market); e.g. {missing[0]}")
            pieces = [chunks[future.key] for future in lost]  # the only chunks without rows
            for future in lost:
                future.release()
            market, strategy_name, config, base, span = submitted.request
            self.forget(market)
            try:  # the nanny restarts a dead worker; scattering needs one
                self.client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
            except TimeoutError:
                raise ClusterFailed(f"every worker was lost and none joined within {WORKER_TIMEOUT}") from None
            again = self._submit_chunks(market, strategy_name, config, base, span, pieces, submitted.combos)
            futures = again.futures
            chunks.update(again.chunks)
        return pd.DataFrame([rows[combo_key(c)] for c in submitted.combos])

    def sweep(self, market: MarketData, strategy_name: str, combos: list[dict[str, Any]], config: BacktestConfig,
              base: dict[str, Any] | None = None, span: Span | None = None, chunks: int | None = None) -> pd.DataFrame:
        """:func:`~vnpy_rotation.backtest.sweep.sweep` on the cluster: the same frame."""
        return self.collect(self.submit(market, strategy_name, combos, config, base, span, chunks))

    def close(self) -> None:
        """Release the scattered markets (the workers drop them)."""
        for _, future, _ in self._scattered:
            future.release()
        self._scattered.clear()


@functools.cache
def code_digest() -> str:
    """The project's version and a hash of its Python sources: part of every task key, so clients running
    different code never share a scheduler's results (reading the sources once takes milliseconds)."""
    from .. import __version__

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:16]}"


def _name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}"
