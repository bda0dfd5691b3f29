"""nbsim: a reproducible, scriptable successor to nanoBragg.c.

The Python API, keyword first, units in the names (see README "Python API")::

    import nbsim
    sim = nbsim.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N_cells=5,
                           wavelength_A=6.2, distance_mm=100, detpixels=128, seed=1)
    result = sim.run()                  # result.float_image: (slow, fast) photons/pixel
    for frame in sim.scan(phi_deg=[0, 0.5, 1.0]):
        ...

- :class:`Simulation` (keywords: ``print(nbsim.keywords_help())``), :func:`simulate`,
  :func:`scan`, :func:`which_engine`;
- :class:`Config` (SI units), shared with the command line: ``Config.from_args(argv)``,
  ``config.to_args()``;
- :class:`NbsimError` for every bad input, :class:`NbsimWarning` for notices.

``nbsim.cli.main(argv)`` is the drop-in ``nanoBragg`` command.
"""
__version__ = "0.1.0"

from .errors import NbsimError, NbsimWarning  # noqa: E402


def __getattr__(name):
    # the API modules import numpy and the plan machinery: load them on first use, so
    # that "import nbsim" (and the command line's start-up) stays light
    if name in ("Simulation", "simulate", "scan", "which_engine", "keywords_help"):
        from . import simulation
        return getattr(simulation, name)
    if name == "Config":
        from .config import Config
        return Config
    if name == "Result":
        from .api import Result
        return Result
    if name == "StructureFactors":
        from .structure_factors import StructureFactors
        return StructureFactors
    raise AttributeError("module 'nbsim' has no attribute %r" % name)


__all__ = ["Simulation", "simulate", "scan", "which_engine", "keywords_help", "Config",
           "Result", "StructureFactors", "NbsimError", "NbsimWarning", "__version__"]
