"""vnpy_ctastrategy loads strategy classes from ./strategies: the ETF rotation sleeve, from the package."""

from vnpy_rotation.cta.etf_rotation_sleeve import EtfRotationSleeveStrategy

__all__ = ["EtfRotationSleeveStrategy"]
