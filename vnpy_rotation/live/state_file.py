"""Atomic JSON state files: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..errors import InputRejected, Problem


@contextmanager
def replacing(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """An open temporary file in ``path``'s folder; on a clean exit it is flushed to disk and renamed over
    ``path`` (``os.replace`` is atomic on POSIX and Windows), on an error removed: ``path`` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through :func:`replacing`."""
    with replacing(path) as out:
        json.dump(data, out, ensure_ascii=False, indent=1)  # NaN is written as NaN, which json reads back


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path`` (``default`` when it does not exist); a damaged file names itself."""
    path = Path(path)
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputRejected(Problem(str(path), exc.lineno, f"not valid JSON: {exc.msg}")) from None
