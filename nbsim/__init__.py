"""nbsim: a reproducible, scriptable successor to nanoBragg.c.

``nbsim.simulate(config)`` renders an image from a :class:`nbsim.config.Config`;
``nbsim.cli.main(argv)`` is the drop-in ``nanoBragg`` command.
"""
__version__ = "0.1.0"

from .errors import NbsimError  # noqa: E402


def simulate(config, engine="auto"):
    """Render ``config``; see :func:`nbsim.api.simulate`."""
    from .api import simulate as _simulate
    return _simulate(config, engine=engine)


__all__ = ["simulate", "NbsimError", "__version__"]
