"""The fake xtquant trading side (tests/fakes/) against the installed xtquant, read as text.

The installed package is never imported (its ``__init__`` calls PyPI): its ``xtconstant.py``,
``xttype.py`` and ``xttrader.py`` are parsed with ``ast`` and the fake's constants, ``xttype``
constructors and attributes, callback methods and client method signatures compared with them.
Skipped when xtquant is not installed.
"""

from __future__ import annotations

import ast
import inspect
from importlib.machinery import PathFinder
from pathlib import Path

import pytest
from fakes import fake_xttrader


# ------------------------------------------------------------------------------------------------
# the fake against the installed xtquant (read as text, never imported)
# ------------------------------------------------------------------------------------------------
def _real_xtquant() -> Path:
    spec = PathFinder.find_spec("xtquant")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("xtquant is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


_LITERAL_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Dict, ast.Set, ast.List, ast.Tuple,
                  ast.UnaryOp, ast.USub)


def _constants(path: Path) -> dict:
    values: dict = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            expression = ast.Expression(node.value)
            if all(isinstance(n, _LITERAL_NODES) for n in ast.walk(expression)):
                values[node.targets[0].id] = eval(compile(expression, str(path), "eval"),  # literals only
                                                  {"__builtins__": {}}, dict(values))
    return values


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)}


def _methods(cls: ast.ClassDef) -> dict[str, list[str]]:
    return {f.name: [a.arg for a in f.args.args] for f in cls.body if isinstance(f, ast.FunctionDef)}


def test_fake_matches_the_installed_xtquant():
    root = _real_xtquant()

    real_constants = _constants(root / "xtconstant.py")
    assert {k: real_constants.get(k, "missing") for k in fake_xttrader.XTCONSTANT} == fake_xttrader.XTCONSTANT

    real_types = _classes(root / "xttype.py")
    for cls in fake_xttrader.XTTYPE_CLASSES:
        init = real_types[cls.__name__].body
        real_init = next(f for f in init if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        params = [a.arg for a in real_init.args.args][1:]
        assert list(inspect.signature(cls.__init__).parameters)[1:] == params, cls.__name__
        attributes = {t.attr for n in ast.walk(real_init) if isinstance(n, ast.Assign) for t in n.targets
                      if isinstance(t, ast.Attribute)}
        instance = cls("8880001234") if cls is fake_xttrader.StockAccount else cls(*[None] * len(params))
        assert set(vars(instance)) == attributes, cls.__name__

    real_trader = _classes(root / "xttrader.py")
    real_callback = _methods(real_trader["XtQuantTraderCallback"])
    fake_callback = {n: list(inspect.signature(f).parameters)
                     for n, f in vars(fake_xttrader.XtQuantTraderCallback).items() if callable(f)}
    assert fake_callback == real_callback
    real_client = _methods(real_trader["XtQuantTrader"])
    for name, func in vars(fake_xttrader.FakeXtQuantTrader).items():
        if callable(func) and not name.startswith("_"):
            assert list(inspect.signature(func).parameters) == real_client[name], name
    assert list(inspect.signature(fake_xttrader.FakeXtQuantTrader.__init__).parameters) == \
        real_client["__init__"]
