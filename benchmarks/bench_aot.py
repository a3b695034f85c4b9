"""``run.py backtest`` as a whole process with the ahead-of-time compiled loops against the same command on numba.

    python benchmarks/bench_aot.py [--pairs 5] [--strategy etf_rotation]

Both sides run the same code on the same home and data, in interleaved pairs (AOT, numba, AOT, numba …); the
only difference is ``VNPY_ROTATION_NO_AOT=1`` on the numba side, which then imports numba and loads the kernel
from numba's cache (warmed by one run before the pairs, reported apart). Per side: CPU seconds (user + system
of the child, from ``os.wait4``), wall seconds and peak RSS; median and minimum.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(strategy: str, home: Path, out: Path, numba: bool) -> tuple[float, float, float]:
    """(cpu s, wall s, peak RSS MB) of one ``run.py backtest`` process."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("VNPY_ROTATION_NO_AOT", None)
    if numba:
        env["VNPY_ROTATION_NO_AOT"] = "1"
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "backtest", "--strategy", strategy, "--home",
                              str(home), "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"run.py backtest failed: {child.stderr.read().decode() if child.stderr else status}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--strategy", default="etf_rotation")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from vnpy_rotation import compiled

    if compiled._extension() is None:
        raise SystemExit("vnpy_rotation._compiled is missing or stale: python -m vnpy_rotation.aot_build")
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        first = run(args.strategy, home, home / "warm", numba=True), run(args.strategy, home, home / "warm2", numba=False)
        sides: dict[str, list[tuple[float, float, float]]] = {"AOT extension": [], "numba (cached)": []}
        for k in range(args.pairs):
            sides["AOT extension"].append(run(args.strategy, home, home / f"a{k}", numba=False))
            sides["numba (cached)"].append(run(args.strategy, home, home / f"n{k}", numba=True))
    print(f"## run.py backtest --strategy {args.strategy}: AOT extension vs numba ({args.pairs} interleaved pairs)\n")
    print("| side | CPU median (s) | CPU min (s) | wall median (s) | wall min (s) | peak RSS median (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for side, runs in sides.items():
        cpu, wall, rss = zip(*runs)
        print(f"| {side} | {statistics.median(cpu):.2f} | {min(cpu):.2f} | {statistics.median(wall):.2f} | "
              f"{min(wall):.2f} | {statistics.median(rss):.0f} |")
    print(f"\nWarm-up runs apart (first run in a fresh home imports the bundled data; numba may compile): numba "
          f"{first[0][0]:.2f} s CPU, then AOT {first[1][0]:.2f} s CPU. Same code, data and home on both sides; "
          "the numba side sets VNPY_ROTATION_NO_AOT=1.")


if __name__ == "__main__":
    main()
