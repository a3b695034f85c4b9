"""``run.py instruments show|add``: what the instrument master says about a code, and user additions."""

from __future__ import annotations

import argparse
import json

from ..errors import InputRejected, Problem, UnknownInstrument
from ..market.instruments import (
    Instrument,
    InstrumentKind,
    InstrumentRegistry,
    NamedInstrument,
    add_user_instrument,
    default_registry,
    unknown_message,
    user_table_path,
)

EXCHANGES = ("SSE", "SZSE", "BSE")


def _split(text: str, require_exchange: bool) -> tuple[str, str | None]:
    code, _, exchange = text.strip().upper().partition(".")
    exchange = {"SH": "SSE", "SZ": "SZSE", "BJ": "BSE"}.get(exchange, exchange)
    if not code.isalnum() or len(code) != 6:
        raise InputRejected(Problem("CODE", None, f"{text!r} is not a 6-character code"))
    if exchange and exchange not in EXCHANGES:
        raise InputRejected(Problem("EXCHANGE", None, f"{exchange!r} is not one of {', '.join(EXCHANGES)}"))
    if require_exchange and not exchange:
        raise InputRejected(Problem("CODE.EXCHANGE", None, f"{text!r}: name the exchange, e.g. {code}.SZSE"))
    return code, exchange or None


def _resolve(registry: InstrumentRegistry, text: str) -> Instrument:
    code, exchange = _split(text, require_exchange=False)
    if exchange is not None:
        return registry.lookup(code, exchange)
    found = registry.exchanges_for(code)
    if len(found) == 1:
        return registry.lookup(code, found[0])
    if not found:
        raise UnknownInstrument(unknown_message(code, "EXCHANGE", registry.user_path))
    raise InputRejected(Problem("CODE", None, f"{code} exists on {' and '.join(found)}: "
                                              f"say which, e.g. {code}.{found[0]}"))


def describe(registry: InstrumentRegistry, inst: Instrument) -> dict[str, object]:
    """Everything ``show`` prints, as plain data (dates as ISO text, fractions as numbers)."""
    rules = inst.rules
    entry = registry.master_entry(inst.code, inst.exchange)
    return {
        "vt_symbol": inst.vt_symbol,
        "name": inst.name or (entry.name if entry else ""),
        "kind": inst.kind.value,
        "verified": inst.verified,
        "source": inst.source,
        "rules": inst.rule_set,
        "price_limits": [{"from": p.start.isoformat(), "pct": p.pct} for p in rules.price_limits],
        "st_price_limits": [{"from": p.start.isoformat(), "pct": p.pct} for p in rules.st_price_limits],
        "t0_from": rules.t0_from.isoformat() if rules.t0_from else None,
        "lot": rules.lot,
        "lot_step": rules.lot_step,
        "tick": rules.tick,
        "stamp_duty": rules.stamp_duty,
        "transfer_fee": rules.transfer_fee,
        "tradable": rules.tradable,
        "rule_sources": list(rules.source),
        "list_date": entry.list_date.isoformat() if entry and entry.list_date else None,
        "delist_date": entry.delist_date.isoformat() if entry and entry.delist_date else None,
    }


def _text(info: dict[str, object]) -> str:
    def limits(items: object) -> str:
        return ", ".join(f"±{p['pct']:.0%} from {p['from']}" for p in items) or "none"  # type: ignore[union-attr]

    lines = [
        f"{info['vt_symbol']}  {info['name']}",
        f"  kind:         {info['kind']} ({'verified' if info['verified'] else 'unverified: inferred'})",
        f"  source:       {info['source']}",
        f"  rule set:     {info['rules']} (sources: {', '.join(info['rule_sources'])})",  # type: ignore[arg-type]
        f"  price limit:  {limits(info['price_limits'])}",
    ]
    if info["st_price_limits"]:
        lines.append(f"  ST limit:     {limits(info['st_price_limits'])}")
    lines += [
        f"  T+0:          {'from ' + str(info['t0_from']) if info['t0_from'] else 'no (T+1)'}",
        f"  lot:          {info['lot']} (then steps of {info['lot_step']}), tick {info['tick']}",
        f"  taxes:        stamp duty on sells {'yes' if info['stamp_duty'] else 'no'}, "
        f"transfer fee {'yes' if info['transfer_fee'] else 'no'}",
    ]
    if info["list_date"] or info["delist_date"]:
        lines.append(f"  listed:       {info['list_date'] or '?'}"
                     + (f", delisted {info['delist_date']}" if info["delist_date"] else ""))
    return "\n".join(lines)


def show(args: argparse.Namespace) -> int:
    registry = default_registry()
    info = describe(registry, _resolve(registry, args.symbol))
    print(json.dumps(info, ensure_ascii=False) if args.json else _text(info))
    return 0


def add(args: argparse.Namespace) -> int:
    code, exchange = _split(args.symbol, require_exchange=True)
    allowed = [k.value for k in InstrumentKind]
    if args.kind not in allowed:
        raise InputRejected(Problem("--kind", None, f"{args.kind!r} is not a kind; allowed: {', '.join(allowed)}"))
    registry = default_registry()
    if args.rules is not None and args.rules not in registry.table.rule_sets:
        raise InputRejected(Problem("--rules", None, f"{args.rules!r} is not a rule set; allowed: "
                                                     f"{', '.join(registry.table.rule_sets)}"))
    path = user_table_path()
    assert path is not None  # run.py settles the runtime folder before any handler runs
    item = NamedInstrument(code=code, exchange=exchange, kind=InstrumentKind(args.kind), rules=args.rules,
                           name=args.name)
    add_user_instrument(path, item, registry.table)
    info = describe(default_registry(), default_registry().lookup(code, exchange))
    print(f"{path}: {info['vt_symbol']} is now {info['kind']} (rule set {info['rules']})")
    return 0


def run(args: argparse.Namespace) -> int:
    return show(args) if args.action == "show" else add(args)


