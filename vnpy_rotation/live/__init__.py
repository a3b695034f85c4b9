"""The live stack's pure core: order plans, sizing at the open, the session cycle, the paper book.

Nothing here imports vnpy; :mod:`vnpy_rotation.apps.rotation` adapts it to the event engine and gateways.
"""
