"""The whole ``run.py backtest`` command against a plain vnpy_portfoliostrategy script, as whole processes.

    python benchmarks/bench_command.py [--pairs 5] [--vqm] [--home DIR]

Each side is a fresh Python process started from this one, in interleaved pairs (ours, vnpy, ours, vnpy …) so
that machine drift hits both alike; per side the median and minimum wall time (process start to exit, its
files written), the median CPU time and each process's peak resident memory (``ru_maxrss`` of that child).
Both sides' bytecode is compiled first (``compile_bytecode``), as an installed package has it.

- ours: ``python run.py backtest --strategy etf_rotation --out DIR`` on the bundled ETF data: A-share rules,
  benchmark, report.html and report.md (risk section included), attribution files, the look-ahead check and
  the identities, a snapshot and the experiment row.
- vnpy: ``benchmarks/vnpy_script_etf.py``: the same symbols and days from the same vnpy_sqlite database,
  ``BacktestingEngine`` with ``vnpy_peer.py``'s top-N momentum rotation, ``calculate_result``,
  ``calculate_statistics``, daily results, trades and statistics written to disk; no A-share rules, no
  benchmark, report, attribution, look-ahead check or record.

``--vqm`` adds the same on ``run.py backtest --strategy vqm`` (the bundled CSI 300 stock subset with its
point-in-time fundamentals) against the script running ``vnpy_vqm_peer.py``'s selection, with its inputs
pre-loaded by ``build_inputs``. ``--real DIR`` adds the case the stock memory goal names: VQM on the 265 CSI 300
stocks of ``DIR/stocks_daily_unadjusted_baostock`` × 10 years (2014-01-02 … 2023-12-29, as ``bench_vqm.py``),
imported with their fundamentals and index membership into the home first (once; a reused ``--home`` keeps them),
``run.py backtest --config`` listing those stocks against the script on the same symbols and days.

Memory is also measured for processes that only import: a bare ``import vnpy`` (the yardstick the goals use),
pandas alone, each side's import set (ours: the backtest command's modules; vnpy: its backtesting module), and
ours after the kernel is loaded (the ahead-of-time extension when built; else numba's cached kernel, numba/LLVM
being a fixed cost of using numba at all). The script runs as in a vnpy user's environment, without pyarrow
(neither vnpy nor pandas requires it; this environment has it because vnpy_rotation does, and pandas imports it
whenever it is installed): hidden from the script's process, so pandas keeps its text as Python strings.
``run.py backtest`` does the same itself (``import_pandas_without_arrow``), and ours' import probes do as it does. The
script with pyarrow, and with pyarrow and ``run.py``'s setting for Arrow's buffers (the system allocator instead
of mimalloc, which keeps freed pages), is measured once each and printed apart. The first
``run.py backtest`` in a fresh home imports the bundled data and may compile the kernel: it is run once before
the pairs and reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench_home import ROOT, code_version, run_in_home

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mb: float
    cpu: float  # user + system CPU seconds of the process (steadier than wall time on a loaded machine)


# Runs argv and reports its wall time and peak RSS. Linux keeps a process's RSS high-water mark across fork and
# exec, so a child forked from a large parent (this one has imported pandas) would report at least the parent's
# size: the child is started from this small stdlib-only launcher instead.
LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime,
                  "code": done.returncode, "stderr": done.stderr.decode(errors="replace")[-2000:]}))
"""


def run_process(argv: list[str], cwd: Path, root: Path = ROOT, extra_env: dict[str, str] | None = None) -> Sample:
    """Run ``argv`` to its end: wall seconds and its peak RSS in MB (``root``: the checkout whose package it
    imports; ``extra_env``: variables set for it). A failure stops the benchmark."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root), **(extra_env or {})}
    done = subprocess.run([PYTHON, "-S", "-c", LAUNCHER, *argv], cwd=cwd, env=env, capture_output=True, text=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({report['code']}):\n{report['stderr']}")
    return Sample(report["seconds"], report["maxrss_kb"] / 1024, report["cpu"])


def compile_bytecode(*roots: Path) -> None:
    """Write the ``.pyc`` files of each checkout's package and of the benchmark scripts, as an installed package
    has them. (Without them, and with PYTHONDONTWRITEBYTECODE set, every process compiles the project's modules
    from source again: ~0.3 s of CPU that no user pays; vnpy's installed packages have theirs.)"""
    paths = [str(p) for root in roots for p in (root / "vnpy_rotation", root / "run.py")] + [str(HERE)]
    subprocess.run([PYTHON, "-m", "compileall", "-q", *paths], check=True, capture_output=True)


def ours(home: Path, strategy: str, out: Path, root: Path = ROOT) -> list[str]:
    return [PYTHON, str(root / "run.py"), "backtest", "--strategy", strategy, "--out", str(out), "--home", str(home)]


# Runs the script given as its first argument with pyarrow hidden, as in a vnpy user's environment: neither vnpy
# nor pandas requires pyarrow (pandas then keeps text as Python strings), but this environment has it because
# vnpy_rotation does, and pandas imports it when present (about 40 MB and 0.05 s of CPU in the script).
HIDE_PYARROW = "import sys; sys.modules['pyarrow'] = None; "
WITHOUT_PYARROW = HIDE_PYARROW + "import runpy; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def theirs(home: Path, symbols: list[str], start: str, end: str, out: Path, strategy: str,
           capital: float | None = None, with_pyarrow: bool = False) -> list[str]:
    """The vnpy script's process: without pyarrow unless ``with_pyarrow`` (see :data:`WITHOUT_PYARROW`)."""
    script = [str(HERE / "vnpy_script_etf.py"), "--home", str(home), "--symbols", ",".join(symbols),
              "--start", start, "--end", end, "--out", str(out), "--strategy", strategy]
    if capital is not None:
        script += ["--capital", str(capital)]
    return [PYTHON, *script] if with_pyarrow else [PYTHON, "-c", WITHOUT_PYARROW, *script]


# What ``run.py backtest`` does before its handler: pandas imported with pyarrow out of its sight.
AS_THE_COMMAND = "from vnpy_rotation.cli.main import import_pandas_without_arrow; import_pandas_without_arrow(); "


def importer(home: Path, code: str, start: str = "") -> list[str]:
    """A process that runs ``start``, settles ``home`` as run.py does, then runs ``code`` (imports only)."""
    prelude = (f"import os; os.chdir({str(home)!r}); from pathlib import Path; "
               f"from vnpy_rotation.runtime import settle_runtime; settle_runtime(Path({str(home)!r})); ")
    return [PYTHON, "-c", start + prelude + code]


# Loads the backtest kernel (the ahead-of-time extension when built, else numba's cache): its fixed cost before any
# bar is simulated.
KERNEL_LOADED = ("import numpy as np, vnpy_rotation.cli.backtest_cmd; from vnpy_rotation.backtest.config import "
                 "BacktestConfig; from vnpy_rotation.backtest.engine import TargetPlan, simulate; "
                 "from vnpy_rotation.backtest.runner import read_spec; from vnpy_rotation.backtest.loader import "
                 "market_for; from vnpy_rotation.strategies import create_strategy; "
                 "s = create_strategy('equal_weight', {'symbols': ['510300.SSE']}); md = market_for(s); "
                 "simulate(md, s.targets(md), BacktestConfig())")


BARE = "bare `import vnpy`"
VNPY_IMPORTS = "vnpy script's imports (vnpy_portfoliostrategy.backtesting, vnpy_sqlite; without pyarrow, as it runs)"
OUR_KERNEL = "ours: imports + the kernel loaded (one 1-symbol simulation; the AOT extension, else numba)"


def fixed_costs(home: Path, repeat: int) -> dict[str, float]:
    """Peak RSS (MB, min of ``repeat``) of import-only processes."""
    probes = {
        BARE: [PYTHON, "-c", "import vnpy"],
        "`import pandas` (with pyarrow, which pandas imports when installed)": [PYTHON, "-c", "import pandas"],
        "`import pandas` without pyarrow": [PYTHON, "-c", HIDE_PYARROW + "import pandas"],
        VNPY_IMPORTS: importer(home, "import vnpy_portfoliostrategy.backtesting, vnpy_sqlite", HIDE_PYARROW),
        "ours: the backtest command's imports (pandas without pyarrow, as it runs)":
            importer(home, "import vnpy_rotation.cli.backtest_cmd", AS_THE_COMMAND),
        OUR_KERNEL: importer(home, KERNEL_LOADED, AS_THE_COMMAND),
    }
    return {name: min(run_process(argv, home).peak_mb for _ in range(repeat)) for name, argv in probes.items()}


@dataclass(frozen=True)
class Case:
    name: str
    strategy: str  # ours
    peer: str  # vnpy_script_etf.py --strategy
    ours_does: str
    vnpy_does: str
    config: Path | None = None  # ours: --config (its strategy.symbols are the peer's symbols too)
    span: tuple[str, str] | None = None  # ours: --start, --end (default: the strategy's own span)
    capital: float | None = None  # both sides' capital (default: each side's own default, 1 000 000 CNY)


ETF = Case("ETF rotation (bundled ETFs)", "etf_rotation", "momentum",
           "etf_rotation (6-factor score, hysteresis, defensive asset) with A-share rules; writes metrics, equity, "
           "trades, orders, positions, report.html + report.md (risk section), attribution, snapshot, experiment "
           "row; look-ahead check (3 cuts) and identities",
           "top-N momentum (20-day return, top 2, week ends), no A-share rules; writes daily results, trades, "
           "statistics")
VQM = Case("VQM (bundled CSI 300 subset)", "vqm", "vqm",
           "vqm with point-in-time fundamentals and membership, A-share rules; the same files, checks and record "
           "as above",
           "vnpy_vqm_peer's VQM selection (inputs pre-loaded by build_inputs), no A-share rules; writes daily "
           "results, trades, statistics")


def case_argv(case: Case, home: Path, out: Path, root: Path = ROOT) -> list[str]:
    """``run.py backtest`` of ``case``, its config and span included."""
    argv = ours(home, case.strategy, out, root)
    if case.capital is not None:
        argv += ["--capital", str(case.capital)]
    if case.config is not None:
        argv += ["--config", str(case.config)]
    if case.span is not None:
        argv += ["--start", case.span[0], "--end", case.span[1]]
    return argv


def bench_case(case: Case, home: Path, pairs: int, work: Path, baseline: Path | None = None) -> dict:
    tag = re.sub(r"\W+", "_", case.name)  # the case's own output folders
    first = run_process(case_argv(case, home, work / f"{tag}_first"), home)
    metrics = json.loads((work / f"{tag}_first" / "metrics.json").read_text(encoding="utf-8"))
    from vnpy_rotation.strategies import create_strategy

    settings = {}
    if case.config is not None:
        import yaml

        settings = yaml.safe_load(case.config.read_text(encoding="utf-8")).get("strategy") or {}
    symbols = create_strategy(case.strategy, settings).symbols
    peer = theirs(home, symbols, metrics["start"], metrics["end"], work / f"{tag}_vnpy", case.peer, case.capital)
    peer_first = run_process(peer, home)
    # The script as it runs in this environment, pyarrow imported by pandas (its default allocator, and run.py's
    # setting for Arrow's buffers, read from cli.main): measured once each, reported apart from the pairs.
    from vnpy_rotation.cli.main import ARROW_POOL, ARROW_POOL_VARIABLE

    with_pyarrow = theirs(home, symbols, metrics["start"], metrics["end"], work / f"{tag}_vnpy_arrow", case.peer,
                          case.capital, with_pyarrow=True)
    peer_pyarrow = (run_process(with_pyarrow, home),
                    run_process(with_pyarrow, home, extra_env={ARROW_POOL_VARIABLE: ARROW_POOL}))
    samples: dict[str, list[Sample]] = {"ours": [], "vnpy": [], "baseline": []}
    for k in range(pairs):
        samples["ours"].append(run_process(case_argv(case, home, work / f"{tag}_{k}"), home))
        samples["vnpy"].append(run_process(peer, home))
        if baseline is not None:  # the same command from another checkout (e.g. before a change), in the round
            samples["baseline"].append(run_process(case_argv(case, home, work / f"{tag}_b{k}", baseline), home,
                                                   baseline))
    return {"case": case, "first": first, "peer_first": peer_first, "peer_pyarrow": peer_pyarrow,
            "samples": samples, "symbols": len(symbols),
            "baseline": baseline,
            "days": f"{metrics['start']} … {metrics['end']}"}


def table(results: list[dict], fixed: dict[str, float]) -> str:
    bare = fixed[BARE]
    lines = ["| case | side | wall median (s) | wall min (s) | CPU median (s) | peak RSS median (MB) "
             "| above bare `import vnpy` (MB) | what it does |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        case: Case = r["case"]
        stats = {}
        for side, does in (("ours", case.ours_does), ("vnpy", case.vnpy_does)):
            s = r["samples"][side]
            wall = [x.seconds for x in s]
            rss = statistics.median(x.peak_mb for x in s)
            stats[side] = (statistics.median(wall), min(wall), rss, statistics.median(x.cpu for x in s))
            label = "`run.py backtest`" if side == "ours" else "vnpy script"
            lines.append(f"| {case.name}, {r['symbols']} symbols, {r['days']} | {label} | {stats[side][0]:.2f} | "
                         f"{stats[side][1]:.2f} | {stats[side][3]:.2f} | {rss:.0f} | {rss - bare:.0f} | {does} |")
        if r["samples"]["baseline"]:
            b = r["samples"]["baseline"]
            wall = [x.seconds for x in b]
            rss = statistics.median(x.peak_mb for x in b)
            lines.append(f"| {case.name} | `run.py backtest` of {r['baseline']} | {statistics.median(wall):.2f} | "
                         f"{min(wall):.2f} | {statistics.median(x.cpu for x in b):.2f} | {rss:.0f} | {rss - bare:.0f} "
                         "| the same command and outputs, other code |")
        o, v = stats["ours"], stats["vnpy"]
        lines.append(f"| {case.name} | ratio ours / vnpy | {o[0] / v[0]:.2f} | {o[1] / v[1]:.2f} | {o[3] / v[3]:.2f} | "
                     f"{o[2] / v[2]:.2f} | {(o[2] - bare) / (v[2] - bare):.2f} | < 1: ours is faster / smaller |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved (ours, vnpy) pairs per case (default 5)")
    parser.add_argument("--vqm", action="store_true", help="also the VQM case on the bundled stocks")
    parser.add_argument("--real", type=Path, help="also VQM on the 265 CSI 300 stocks × 10 years of this folder "
                        "(../shared/data/real): imported into the home first")
    parser.add_argument("--home", type=Path, help="runtime folder to reuse (default: a temporary one)")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout of the project (e.g. `git archive` of an older commit, unpacked): its "
                             "`run.py backtest` joins each round as a third process")
    args = parser.parse_args()
    if args.real is not None:
        args.real = args.real.resolve()  # before the run moves into the home: a relative path means the caller's
    run_in_home(args.home, "bench_command_", lambda home: run_all(args, home))


def stocks_case(real: Path, home: Path) -> Case:
    """VQM on the 265 stocks of ``real`` (bench_vqm.py's data and span), imported into ``home``; the config lists
    them (written into the home)."""
    import bench_vqm
    import yaml

    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    bench_vqm.import_data(real, store)
    symbols = bench_vqm.stock_symbols(store)
    config = home / "bench_command_vqm_stocks.yaml"
    config.write_text(yaml.safe_dump({"strategy": {"symbols": symbols, "index": bench_vqm.INDEX}}), encoding="utf-8")
    span = (bench_vqm.START.isoformat(), bench_vqm.END.isoformat())
    return Case(f"VQM ({len(symbols)} CSI 300 stocks × 10 years)", "vqm", "vqm", VQM.ours_does, VQM.vnpy_does,
                config, span, bench_vqm.CAPITAL)


def run_all(args: argparse.Namespace, home: Path) -> None:
    compile_bytecode(ROOT, *([args.baseline.resolve()] if args.baseline else []))
    with tempfile.TemporaryDirectory(prefix="bench_command_out_") as tmp:
        work = Path(tmp)
        cases = [ETF, VQM] if args.vqm else [ETF]
        if args.real is not None:
            cases.append(stocks_case(args.real, home))
        results = [bench_case(case, home, args.pairs, work, args.baseline and args.baseline.resolve())
                   for case in cases]
        fixed = fixed_costs(home, 3)
    print(f"\n## run.py backtest vs a vnpy_portfoliostrategy script (code {code_version()}, {args.pairs} "
          f"interleaved pairs, {os.cpu_count()} cores)\n")
    print(table(results, fixed))
    print("\nFirst runs (reported apart; ours imports the bundled data into a fresh home and may compile the "
          "kernel; vnpy's first run reads the same database):")
    for r in results:
        print(f"- {r['case'].name}: ours {r['first'].seconds:.2f} s / {r['first'].peak_mb:.0f} MB, "
              f"vnpy {r['peer_first'].seconds:.2f} s / {r['peer_first'].peak_mb:.0f} MB; the vnpy script with pyarrow "
              f"(as this environment has it): {r['peer_pyarrow'][0].seconds:.2f} s, {r['peer_pyarrow'][0].cpu:.2f} s "
              f"CPU, {r['peer_pyarrow'][0].peak_mb:.0f} MB ({r['peer_pyarrow'][1].peak_mb:.0f} MB with Arrow's buffers "
              "on the system allocator, as run.py has them)")
    print("\nImport-only processes (peak RSS, MB; the fixed cost of the libraries each side uses):\n")
    print("| process | peak RSS (MB) |\n|---|---:|")
    for name, mb in fixed.items():
        print(f"| {name} | {mb:.0f} |")
    bare = fixed[BARE]
    for r in results:
        o = statistics.median(x.peak_mb for x in r["samples"]["ours"])
        v = statistics.median(x.peak_mb for x in r["samples"]["vnpy"])
        print(f"\n{r['case'].name}: above a bare `import vnpy`, ours {o - bare:.0f} MB vs vnpy {v - bare:.0f} MB "
              f"(goal for the ETF case: ≤ 1/2, i.e. ≤ {(v - bare) / 2:.0f} MB); whole process {o:.0f} vs {v:.0f} MB "
              f"(goal for 265 stocks: ≤ 1/3). Beyond each side's import set: ours "
              f"{o - fixed[OUR_KERNEL]:.0f} MB, vnpy {v - fixed[VNPY_IMPORTS]:.0f} MB.")


if __name__ == "__main__":
    sys.path[:0] = [str(HERE), str(ROOT)]  # this checkout's package, not an installed one
    main()
