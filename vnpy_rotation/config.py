"""Configuration helpers every package shares: the frozen base model, YAML reading and validation.

Settings are validated once at the edge (a YAML file, a JSON setting, CLI flags) into frozen pydantic
models; a mistake raises :class:`~vnpy_rotation.errors.InputRejected` naming the file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputRejected, Problem

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    """Base of every configuration record: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StrategySettings(Frozen):
    """Base of every strategy's typed settings (frozen, unknown fields rejected)."""


def _problems(source: str, exc: ValidationError) -> list[Problem]:
    """One problem per field; a model-level error (no field) names just the source."""
    return [Problem(source, None, f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"])
            for e in exc.errors()]


def validate_section(model: type[M], raw: Any, source: str) -> M:
    """Validate ``raw`` as ``model``; errors name the source and the field."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise InputRejected(_problems(source, exc)) from None


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml when PyYAML has it (an order of magnitude faster: the shipped
    instrument table and manifest are read on every run). The constructor is the same, so the result is too; a
    document libyaml refuses is parsed again by the pure-Python parser, whose error (message and line) is
    the one raised."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None:
        try:
            return yaml.load(text, Loader=loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a syntax error names the file and line."""
    try:
        raw = safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputRejected(Problem(str(path), None, "file not found")) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputRejected(Problem(str(path), None if mark is None else mark.line + 1, str(exc))) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputRejected(Problem(str(path), None, "expected a mapping at the top level"))
    return raw


def yaml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (keys and list indices) in ``text``, or of its nearest parent."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def validate_at(model: type[M], raw: Any, source: str, text: str, prefix: tuple[Any, ...] = ()) -> M:
    """Validate ``raw`` (the node at ``prefix`` of the YAML ``text`` read from ``source``) as ``model``; every
    error names ``source:line`` of the offending node and the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            head = msg.split(":", 1)[0]
            if not loc and isinstance(raw, dict) and head.split(".")[0] in raw:  # a model-level rule naming its field
                loc = tuple(int(p) if p.isdigit() else p for p in head.split("."))
                msg = msg.split(":", 1)[1].strip()
            field_name = ".".join(map(str, prefix + loc))
            problems.append(Problem(source, yaml_line(text, prefix + loc), f"{field_name}: {msg}" if field_name else msg))
        raise InputRejected(problems) from None
