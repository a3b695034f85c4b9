"""VeighNa apps, one package each (``BaseApp`` in ``__init__``, ``engine.py``, ``ui/``): thin shells over
the layers below (rotation: the strategies' live execution; risk: the risk engine's enforcement)."""
