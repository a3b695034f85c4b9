"""vnpy_rotation: ETF rotation and VQM stock selection for VeighNa on A-shares.

Importing this package does not import vnpy: call
:func:`vnpy_rotation.runtime.settle_runtime` first to choose vnpy's runtime folder.
"""

__version__ = "0.1.0"
