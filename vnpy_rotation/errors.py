"""The project's exception hierarchy.

Each name says what the caller should do about it:

- :class:`InputRejected` -- fix the input (a file, a config field, an argument) and retry;
  carries every problem found, each naming its place (``file:line: reason``).
- :class:`UnknownInstrument` -- add the code to the instrument table; we never guess rules.
- :class:`RuntimeFolderConflict` -- start a new process: vnpy already chose another folder.
- :class:`PlatformUnsupported` -- run this part where its native dependency exists (XT on Windows).
"""

from __future__ import annotations

from dataclasses import dataclass


class RotationError(Exception):
    """Base class of every error this project raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, with where it is."""

    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.reason}"


class InputRejected(RotationError):
    """The input is wrong; nothing was written. Fix the listed problems and retry."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownInstrument(RotationError):
    """No rule covers this code; add it to the instrument table instead of guessing."""


class RuntimeFolderConflict(RotationError):
    """vnpy was already imported with another runtime folder in this process."""


class PlatformUnsupported(RotationError):
    """A native dependency (xtquant's MiniQMT modules) is not available on this machine."""
