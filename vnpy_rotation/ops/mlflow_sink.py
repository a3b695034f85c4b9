"""The optional MLflow tracking sink of the experiment registry: each recorded experiment also logged as an
MLflow run (``pip install vnpy_rotation[mlflow]``; configured by ``$VNPY_ROTATION_MLFLOW_URI`` or the
``experiments.mlflow_uri`` key of the home's ``vt_setting.json``). mlflow is imported only when a sink is set.
"""

from __future__ import annotations

import math
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from .versions import _flatten, canonical_json

if TYPE_CHECKING:
    from .experiments import Experiment

MLFLOW_ENV = "VNPY_ROTATION_MLFLOW_URI"
MLFLOW_SETTING = "experiments.mlflow_uri"  # the same, as a key of HOME/.vntrader/vt_setting.json
MLFLOW_EXPERIMENT = "vnpy_rotation"
# MLflow retries a failing HTTP request 7 times with backoff (about 4 minutes for an unreachable server) and
# waits 120 s for an answer (mlflow.environment_variables): a copy of the row is not worth holding a run for.
SINK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
             "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}

def mlflow_uri() -> str:
    """The MLflow tracking URI experiments are also sent to: ``$VNPY_ROTATION_MLFLOW_URI``, else the
    ``experiments.mlflow_uri`` key of the home's ``vt_setting.json``; "" (no sink) when neither is set."""
    uri = os.environ.get(MLFLOW_ENV, "").strip()
    if uri:
        return uri
    if "vnpy.trader.setting" in sys.modules:  # only a settled runtime has a home's settings
        from vnpy.trader.setting import SETTINGS

        return str(SETTINGS.get(MLFLOW_SETTING) or "").strip()
    return ""


def send_to_sink(experiment: Experiment, uri: str | None = None) -> str:
    """Log ``experiment`` as an MLflow run when a sink is configured; "" when done or none is configured,
    else the one-line problem (the experiment stays recorded in the project database)."""
    uri = mlflow_uri() if uri is None else uri
    if not uri:
        return ""
    where = f"{MLFLOW_ENV} / {MLFLOW_SETTING} = {uri}"
    try:
        import mlflow  # noqa: F401  (optional: the extra vnpy_rotation[mlflow])
    except ImportError:
        return (f"error: the MLflow sink is configured ({where}) but mlflow is not installed: "
                "pip install 'vnpy_rotation[mlflow]', or unset it; the experiment is in the project database")
    try:
        log_to_mlflow(experiment, uri)
    except Exception as exc:  # the sink is a copy: its failure never fails the run
        return f"warning: experiment {experiment.id} not sent to MLflow ({where}): {type(exc).__name__}: {exc}"
    return ""


def _param_key(name: str) -> str:
    # MLflow keys allow alphanumerics, "_", "-", ".", " ", "/" (mlflow.utils.validation)
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)[:250]


def mlflow_fields(e: Experiment) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """(params, metrics, tags) of ``e`` as MLflow logs them: params are the settings and the inputs (flat),
    metrics the finite numbers of its metrics, tags its kind, id, commit, status and output folder."""
    i = e.inputs
    facts = {"window.start": i.start, "window.end": i.end, "bars_hash": i.bars_hash, "bars_symbols": i.bars_symbols,
             "config_path": i.config_path, "config_sha256": i.config_sha256, "settings_hash": i.settings_hash,
             **_flatten("settings", i.settings), **_flatten("inputs", i.extra)}
    params = {_param_key(k): (canonical_json(v) if isinstance(v, (dict, list)) else str(v))[:6000]
              for k, v in facts.items()}
    metrics = {_param_key(k): float(v) for k, v in e.metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    tags = {"kind": e.kind, "experiment_id": e.id, "strategy": i.strategy, "code_commit": i.code_commit,
            "status": e.status, "who": e.who, "command": e.command[:5000], "out_dir": e.out_dir,
            "error": e.error[:5000]}
    return params, metrics, tags


def log_to_mlflow(e: Experiment, uri: str) -> str:
    """One MLflow run (named by the experiment id) in the MLflow experiment ``vnpy_rotation``; returns its id.

    The output folder is a tag (``out_dir``), not copied. MLflow 3 refuses a file store unless
    ``MLFLOW_ALLOW_FILE_STORE=true``: a ``file:`` URI or a plain path sets it for this process. A server's
    requests are retried once with a 10 s timeout (:data:`SINK_HTTP`) unless the environment says otherwise.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    for name, value in SINK_HTTP.items():  # a user's own setting wins
        os.environ.setdefault(name, value)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(MLFLOW_EXPERIMENT)
    start_ms = int(datetime.fromisoformat(e.started_at).timestamp() * 1000)
    end_ms = int(datetime.fromisoformat(e.finished_at).timestamp() * 1000)
    params, metrics, tags = mlflow_fields(e)
    run = client.create_run(experiment_id, start_time=start_ms, run_name=e.id)
    run_id = run.info.run_id
    client.log_batch(run_id, metrics=[Metric(k, v, end_ms, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    items = [Param(k, v) for k, v in params.items()]
    for k in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[k:k + 100])
    client.set_terminated(run_id, "FINISHED" if e.status == "ok" else "FAILED", end_time=end_ms)
    return str(run_id)
