"""Fair timing of two sides in one process: interleaved pairs, warm-up apart, min and median, the ratio.

Machines drift (other processes, CPU frequency, caches), so timing one side N times and then the other
N times skews the ratio towards whichever ran in the quieter spell. :func:`interleaved` runs the sides
alternately (A, B, A, B, …; the order flips every round) after one untimed warm-up call each, whose time
is reported apart (numba compilation or cache load, vnpy's lazy imports, first-touch caches).

Each timed call is timed twice: wall time and this process's CPU time. On a loaded machine a call of a few
milliseconds is often preempted, which inflates its wall time but not its CPU time. The garbage collector
runs as it would (a full collection before each call was tried: it spares the side that allocates many
objects its collections and leaves the next side's data out of the CPU caches, so it is not neutral).

Compare two sides in an interleaving of their own. With two sides and the order flipped each round (A B | B A |
A B …) each side follows itself half the time and the other side half the time. Among more sides it does not:
in A B C | C B A | A B C … B always follows A or C, and A follows itself or B, so a short call placed after a
long one that evicts the CPU caches pays that eviction in every other round while its peer never does (measured:
a 3 ms backtest timed right after vnpy's 0.3 s one took about 1 ms, a third, longer at the median than the
same call after another of ours). Parts of one side (targets, kernel, frames) are timed in an interleaving among themselves.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Timing:
    name: str
    warmup: float  # seconds of the first, untimed call
    times: tuple[float, ...]  # seconds of each timed call
    value: Any = None  # what the last call returned
    cpu_times: tuple[float, ...] = ()  # CPU seconds of this process during each timed call

    @property
    def cpu_best(self) -> float:
        return min(self.cpu_times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_times)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def interleaved(sides: dict[str, Callable[[], Any]], rounds: int) -> dict[str, Timing]:
    """Each side once untimed, then ``rounds`` rounds of one timed call per side, alternating the order."""
    warm: dict[str, float] = {}
    values: dict[str, Any] = {}
    for name, func in sides.items():
        started = time.perf_counter()
        values[name] = func()
        warm[name] = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for k in range(rounds):
        for name in names if k % 2 == 0 else names[::-1]:
            started, started_cpu = time.perf_counter(), time.process_time()
            values[name] = sides[name]()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return {name: Timing(name, warm[name], tuple(times[name]), values[name], tuple(cpu[name])) for name in sides}


def ratio_line(slow: Timing, fast: Timing, unit: float = 1e3, suffix: str = "ms") -> str:
    """``slow`` over ``fast`` by min and by median, with both sides' figures."""
    return (f"{slow.name} {slow.best * unit:.1f} {suffix} (median {slow.median * unit:.1f}) / {fast.name} "
            f"{fast.best * unit:.2f} {suffix} (median {fast.median * unit:.2f}) = "
            f"{slow.best / fast.best:.1f}× by min, {slow.median / fast.median:.1f}× by median; CPU time "
            f"{slow.cpu_best * unit:.1f} / {fast.cpu_best * unit:.2f} {suffix} = {slow.cpu_best / fast.cpu_best:.1f}× "
            f"by min, {slow.cpu_median / fast.cpu_median:.1f}× by median")


def markdown(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
