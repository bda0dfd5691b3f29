"""Rendering engines behind one flat signature; see :mod:`nbsim.engines.registry`."""
from .registry import active, available, resolve, run  # noqa: F401
