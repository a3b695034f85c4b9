"""The layers: a package imports only packages below it (at run time; ``TYPE_CHECKING`` imports are types
only), so each rule has one home and every path reaches it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vnpy_rotation"
# From the bottom up; a package may import its own layer and the ones below.
LAYERS = [
    {"errors", "runtime", "config", "protocol", "bundled"},
    {"market"},
    {"data", "fundamentals", "monitor"},
    {"factors", "rotation"},
    {"risk", "canary", "attribution", "allocation"},
    {"backtest", "live", "notify"},
    {"strategies", "cta"},
    {"research", "ops"},
    {"apps", "gateways", "web", "tui"},
    {"cli"},
]
LEVEL = {name: k for k, names in enumerate(LAYERS) for name in names}
PURE = ("market", "factors", "rotation", "risk", "canary", "attribution", "allocation", "monitor")  # no vnpy imports at all
# Known exceptions, each with its reason (the list is asserted exact, so a fixed one must be removed):
# the run orchestration looks a strategy class up by name (process-pool workers receive names); it belongs
# with research/ and is to move there.
KNOWN = {("backtest/runner.py", "strategies"), ("backtest/sweep.py", "strategies")}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, first project package) of every run-time import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    package = path.relative_to(PACKAGE).parts
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:-1])[: len(package) - node.level] if node.level > 1 else list(package[:-1])
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts[0]] if parts else [alias.name for alias in node.names]
                found += [(node.lineno, n) for n in names]
            elif node.module and node.module.startswith("vnpy_rotation"):
                parts = node.module.split(".")
                found.append((node.lineno, parts[1] if len(parts) > 1 else node.names[0].name))
            elif node.module and node.module.split(".")[0] == "vnpy":
                found.append((node.lineno, "vnpy"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in ("vnpy", "vnpy_rotation"):
                    found.append((node.lineno, "vnpy" if top == "vnpy" else alias.name.split(".")[1]))
    return found


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if len(p.relative_to(PACKAGE).parts) > 1 or p.stem in LEVEL)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_package_imports_one_above_it(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if own not in LEVEL:
        pytest.skip(f"{own} is not in the layer table")
    where = "/".join(path.relative_to(PACKAGE).parts)
    upward = [(line, name) for line, name in imports(path)
              if name in LEVEL and LEVEL[name] > LEVEL[own] and (where, name) not in KNOWN]
    assert upward == [], f"{path.relative_to(PACKAGE)} imports a layer above {own}: {upward}"
    if own in PURE:
        assert not [n for _, n in imports(path) if n == "vnpy"], f"{path} imports vnpy"


def test_the_known_exceptions_still_exist():
    for where, name in KNOWN:
        assert name in [n for _, n in imports(PACKAGE / where)], f"{where} no longer imports {name}: drop it"
