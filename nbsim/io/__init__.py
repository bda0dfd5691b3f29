"""File formats, one module each; writers write whole files or nothing (atomic.py)."""
import importlib

from ..errors import NbsimError


def require(module, flag, package=None):
    """Import an optional library ``module`` for the output ``flag``, or raise a
    one-line error naming the package and the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module.split(".")[0]
        raise NbsimError("%s: needs the %s package, which is not installed (pip install %s)"
                         % (flag, package, package)) from None
