"""Strategy classes the app can run: the built-in target strategies and those in ``./strategies``.

A class qualifies when it has a ``name``, a pydantic ``Settings`` model and a ``targets`` method (the
:class:`~vnpy_rotation.backtest.strategy.TargetStrategy` protocol); vnpy CTA templates in the same folder
are left to the CTA engine.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from typing import Callable

from ...strategies import STRATEGIES


def is_target_strategy(obj: object) -> bool:
    return (inspect.isclass(obj) and isinstance(getattr(obj, "name", None), str)
            and hasattr(obj, "Settings") and callable(getattr(obj, "targets", None)))


def discover(folder: Path | None, log: Callable[[str], None] = print) -> dict[str, type]:
    """Class name -> class: the package's strategies, then every qualifying class in ``folder/*.py``.

    A file that fails to import is reported with its traceback and skipped.
    """
    classes = {cls.__name__: cls for cls in STRATEGIES.values()}
    if folder is None or not folder.is_dir():
        return classes
    for path in sorted(folder.glob("*.py")):
        module_name = f"rotation_user_strategies.{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception:
            log(f"策略文件{path}加载失败:\n{traceback.format_exc()}")
            continue
        for value in vars(module).values():
            if is_target_strategy(value) and value.__module__ == module_name:
                classes[value.__name__] = value
    return classes
