"""The terminal market monitor (``python run.py monitor``): a ``rich`` screen over any
:class:`~vnpy_rotation.monitor.view.MonitorFeed` — a replayed tick file or the monitor app on a gateway."""
