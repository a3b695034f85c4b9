"""``run.py trade``: the trading daemon, replaying history in paper mode or trading live through XT."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from ..backtest.runner import read_sections
from ..errors import InputRejected, PlatformUnsupported, Problem
from .dashboard_cmd import beside_daemon


def run(args: argparse.Namespace) -> int:
    from ..apps.rotation.daemon import TradeSpec, claim_out_folder, run_parameters

    raw, source, config, _ = read_sections(args.config, args.capital,
                                           extra=("live", "canary", "release", "allocation", "accounts",
                                                  "strategies"))
    if "accounts" in raw or "strategies" in raw:
        return _run_several(args, raw, source, config)
    if not args.strategy:
        raise InputRejected(Problem("--strategy", None, "required: the built-in strategy to trade (or a --config "
                                    "with top-level accounts: and strategies:, which names its strategies)"))
    live = _live_section(raw, source, args)
    spec = TradeSpec(args.strategy, dict(raw.get("strategy") or {}), config, args.out, args.start, args.end,
                     float(live.get("tolerance_bps", 0.0 if args.gateway == "replay" else 30.0)),
                     int(live.get("max_rounds", 3)), kpi=_kpi(raw.get("kpi"), source))
    if raw.get("allocation") is not None:  # capital shared among strategies and accounts (docs/allocation.md)
        from ..allocation import read_allocation_config

        spec = replace(spec, allocation=read_allocation_config(args.config))
    canary = _canary(raw.get("canary"), spec.strategy, spec.settings, source, rehearsal=args.gateway == "replay")
    if canary is not None:
        spec = replace(spec, canary=canary, version=canary.champion)
    _check_strategy(spec.strategy, spec.settings, source)
    if args.gateway == "xt":
        _check_xt()
    parameters = run_parameters(spec, args.gateway, live.get("xt") or {})
    # --dashboard: served on a thread until the daemon returns
    with beside_daemon(args, lambda: f"{spec.out}: {claim_out_folder(spec.out, parameters, args.fresh)}"):
        if args.gateway == "replay":
            from ..ops.experiments import start_inputs, track

            inputs = start_inputs(spec.strategy, spec.settings, args.config, spec.start, spec.end, source,
                                  backtest=spec.config.model_dump(mode="json"))
            with track("replay", inputs, out=spec.out) as experiment:
                experiment.exit_code = _replay(spec, experiment, args.config)
            return experiment.exit_code
        return _live(spec, live.get("xt") or {}, args.once)


def _live_section(raw: dict, source: str, args: argparse.Namespace) -> dict:
    """The ``live:`` section (tolerance_bps, max_rounds, xt), after checking the window of the command line."""
    live = dict(raw.get("live") or {})
    unknown = set(live) - {"tolerance_bps", "max_rounds", "xt"}
    if unknown:
        raise InputRejected(Problem(source, None, f"live: unknown fields {sorted(unknown)}"))
    if args.start and args.end and args.start > args.end:
        raise InputRejected(Problem("--start/--end", None, f"start {args.start} is after end {args.end}"))
    return live


def _run_several(args: argparse.Namespace, raw: dict, source: str, config) -> int:
    """Several strategies across several accounts in one daemon (docs/allocation.md, "Several accounts"):
    one gateway per account, each strategy in ``OUT/<strategy>/``, the accounts in ``OUT/accounts.csv``."""
    import sys

    from ..apps.rotation.daemon import claim_out_folder
    from ..apps.rotation.several import SeveralSpec, run_outputs, several_parameters

    run_config = _several(raw, source, args.config, args.gateway)
    live = _live_section(raw, source, args)
    names = [s.name for s in run_config.strategies]
    if args.strategy:
        print(f"note: --strategy {args.strategy} is ignored: {source} names the strategies it runs "
              f"({', '.join(names)})", file=sys.stderr)
    spec = SeveralSpec(run_config, config, args.out, args.start, args.end,
                       float(live.get("tolerance_bps", 0.0 if args.gateway == "replay" else 30.0)),
                       int(live.get("max_rounds", 3)), kpi=_kpi(raw.get("kpi"), source))
    if args.gateway == "xt":
        _check_xt()
    parameters = several_parameters(spec, args.gateway)
    with beside_daemon(args, lambda: f"{spec.out}: {claim_out_folder(spec.out, parameters, args.fresh, run_outputs(run_config))}"):
        if args.gateway == "replay":
            from ..apps.rotation.several import run_several_replay

            started = time.perf_counter()
            code = run_several_replay(spec)
            print(f"\nreplay of {len(names)} strategies in {len(run_config.accounts)} accounts written to {spec.out} "
                  f"in {time.perf_counter() - started:.1f} s: one folder per strategy ({', '.join(names)}), "
                  "accounts.csv (each account against the sum of its strategies' books), state/ (the allocation "
                  f"record in risk_state.json); statistics: run.py stats --run {spec.out}")
            if code:
                print("an account's positions or cash differ from its strategies' books: see accounts.csv")
            return code
        return _live_several(spec, live.get("xt") or {}, args.once)


def _kpi(raw: object, source: str):
    """The ``kpi:`` section: the thresholds of the daily KPI snapshot the daemon takes after each session."""
    from ..config import validate_section
    from ..ops.kpi_config import KpiThresholds

    return validate_section(KpiThresholds, raw, f"{source}: kpi")


XT_NEEDS = (
    "trade --gateway xt needs xtquant's native modules, which exist only on Windows: run it there, with "
    "MiniQMT (QMT's 极简模式) running and logged in. It connects vnpy_xt's XtGateway with the settings saved by "
    "VeighNa Trader's 连接 XT dialog (HOME/.vntrader/connect_xt.json) or a 'live: xt:' section in --config: "
    "QMT路径 (the MiniQMT userdata_mini folder), 资金账号 (the account), 仿真交易 (是/否), token (XT data, "
    "optional). To paper-trade on this machine use --gateway replay."
)


def _canary(raw: object, strategy: str, settings: dict, source: str, rehearsal: bool):
    """A ``canary:`` section: ``candidate`` (a version: id, prefix or STRATEGY:alias) and the release's stage
    table and gates (:class:`~vnpy_rotation.canary.config.CanaryConfig`); the champion is the strategy's
    ``champion`` alias when that version's settings are the ones this run trades (else it is unregistered)."""
    if raw is None:
        return None
    from ..apps.rotation.daemon import CanaryStart
    from ..canary.config import canary_config
    from ..ops.versions import VersionRegistry

    if not isinstance(raw, dict) or not raw.get("candidate"):
        raise InputRejected(Problem(source, None, "canary: candidate: the candidate version is required"))
    section = dict(raw)
    registry = VersionRegistry()
    try:
        candidate = registry.load(str(section.pop("candidate")))
    except InputRejected as exc:
        raise InputRejected([Problem(source, None, f"canary: candidate: {p}") for p in exc.problems]) from None
    if candidate.strategy != strategy:
        raise InputRejected(Problem(source, None, f"canary: candidate: version {candidate.id} is a "
                                    f"{candidate.strategy} version, not {strategy}"))
    from ..strategies import create_strategy

    running = create_strategy(strategy, settings, f"{source}: strategy").settings.model_dump(mode="json")
    if candidate.settings == running:
        raise InputRejected(Problem(source, None, f"canary: candidate: version {candidate.id} has the settings this "
                                    "run trades already: a canary needs a different version"))
    champion = registry.aliases(strategy).get("champion", "")
    if champion and registry.get(champion).settings != running:
        champion = ""  # the alias names other settings than the ones this run trades
    # a paper replay rehearses the release: its alias moves stay in its state, the registry is untouched
    return CanaryStart(candidate.id, canary_config(section, f"{source}: canary"), champion, rehearsal=rehearsal)


def _several(raw: dict, source: str, config_file, gateway: str):
    """Top-level ``accounts:`` and ``strategies:`` (several strategies across several accounts in one daemon,
    docs/allocation.md): validated once (file:line, the field; each strategy's settings; no symbol traded by
    two strategies of one account; every account of the ``--gateway``'s kind; no single-strategy section)."""
    from pathlib import Path

    from ..allocation.config import run_config, shared_symbols
    from ..config import yaml_line
    from ..strategies import STRATEGIES, create_strategy

    text = Path(config_file).read_text(encoding="utf-8")
    config = run_config(raw, source, text)
    symbols: dict[str, tuple[str, ...]] = {}
    for k, run in enumerate(config.strategies):
        if run.strategy not in STRATEGIES:
            raise InputRejected(Problem(source, yaml_line(text, ("strategies", k, "strategy")),
                                        f"strategies.{k}.strategy: unknown strategy {run.strategy!r}; choose from "
                                        f"{', '.join(sorted(STRATEGIES))}"))
        where = f"{source}:{yaml_line(text, ('strategies', k, 'settings'))}: strategies.{k}.settings"
        symbols[run.name] = tuple(create_strategy(run.strategy, dict(run.settings), where).symbols)
    problems = [Problem(source, yaml_line(text, ("strategies", k)),
                        f"strategies.{k}: {config.strategies[k].name} and {other} trade {list(common)} in account "
                        f"{config.strategies[k].account}: strategies of one account must trade different symbols")
                for k, other, common in shared_symbols(config, symbols)]
    problems += [Problem(source, yaml_line(text, ("accounts", k, "kind")),
                         f"accounts.{k}.kind: {account.kind}, but the run trades through --gateway {gateway}: every "
                         f"account of a run is of its gateway's kind")
                 for k, account in enumerate(config.accounts) if account.kind != gateway]
    problems += [Problem(source, yaml_line(text, (section,)),
                         f"{section}: a single-strategy section; with strategies: each strategy's settings are its "
                         f"strategies[].settings (a canary runs in a single-strategy run)")
                 for section in ("strategy", "canary") if section in raw]
    if problems:
        raise InputRejected(problems)
    return config


def _check_xt() -> None:
    from ..data.xt_fetch import PLATFORM_EXPLANATION, xtquant_native_problem

    problem = xtquant_native_problem()
    if problem:  # keep only the detail about this machine, not the data script's advice
        raise PlatformUnsupported(f"{XT_NEEDS} {problem.removeprefix(PLATFORM_EXPLANATION).strip()}")


def _check_strategy(name: str, settings: dict, source: str) -> None:
    from ..strategies import create_strategy

    create_strategy(name, settings, f"{source}: strategy")  # names the field of a bad setting


def _replay(spec, experiment, config_file) -> int:
    from ..apps.rotation.daemon import run_replay

    started = time.perf_counter()
    result = run_replay(spec)
    experiment.replay_done(spec, config_file, result, gateway="replay")
    if result is None:  # a canary: two versions in one account, no single backtest to equal
        print(f"\nreplay written to {spec.out} in {time.perf_counter() - started:.1f} s "
              "(trades.csv, orders.csv, daily_summary.csv); the canary: run.py canary status --strategy "
              f"{spec.strategy} --state {spec.out / 'state'}")
        return 0
    print(f"\nreplay written to {spec.out} in {time.perf_counter() - started:.1f} s "
          "(trades.csv, orders.csv, daily_summary.csv, consistency.md)")
    print(f"consistency with the backtest: {result.headline()}")
    return 0 if result.consistent else 1


def _live_several(spec, xt_override: dict, once: bool) -> int:
    from vnpy_xt import XtGateway

    from ..apps.rotation.live_daemon import xt_setting
    from ..apps.rotation.several_live import run_several_live

    settings = {a.gateway: xt_setting({**xt_override, **a.xt}) for a in spec.run.accounts}
    return run_several_live(spec, XtGateway, settings, once=once)


def _live(spec, xt_override: dict, once: bool) -> int:
    from vnpy_xt import XtGateway

    from ..apps.rotation.live_daemon import run_live, xt_setting

    return run_live(spec, XtGateway, xt_setting(xt_override), once=once)
