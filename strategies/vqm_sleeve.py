"""vnpy_ctastrategy loads strategy classes from ./strategies: the VQM stock-selection sleeve, from the package."""

from vnpy_rotation.cta.vqm_sleeve import VqmSleeveStrategy

__all__ = ["VqmSleeveStrategy"]
