"""Engine names, availability and the fallback order numba → c.

``resolve(name)`` turns "auto", "numba" or "c" (or ``NBSIM_ENGINE``) into an engine
that can run here: auto prefers Numba and falls back to the C extension with a
one-line warning; naming an unavailable engine is an error. What "auto" picks also
depends on the job (small jobs and -fast go to C; see :func:`nbsim.api.choose_engine`,
the one place that rule lives): ``resolve(name, plan=plan)`` and ``active(job)``
answer for a given job before it renders. ``active()`` tells which engine ran last.
"""
from __future__ import annotations

import os

from ..errors import NbsimError

ENGINES = ("numba", "c")
_active = None


def _numba_status():
    from .._jit import HAVE_NUMBA, NUMBA_IMPORT_ERROR
    return HAVE_NUMBA, NUMBA_IMPORT_ERROR


def c_status():
    try:
        from . import c_engine
    except ImportError as exc:
        return False, str(exc)
    return c_engine.available()


def available():
    """{name: (ok, reason)} for every engine."""
    return {"numba": _numba_status(), "c": c_status()}


def resolve(name=None, warn=None, plan=None):
    """The engine for ``name``. With ``plan`` (a job), the engine rendering that job
    will use; without one, "auto" means the engine for a large job."""
    if plan is not None:
        from ..api import choose_engine
        return choose_engine(plan, name, warn=warn)
    name = (name or os.environ.get("NBSIM_ENGINE") or "auto").strip().lower()
    if name not in ENGINES + ("auto",):
        raise NbsimError("-engine: unknown engine '%s' (choose numba, c or auto)" % name)
    if name != "auto":
        ok, why = _numba_status() if name == "numba" else c_status()
        if not ok:
            raise NbsimError("-engine %s: not available here (%s)" % (name, why))
        return name
    ok, why = _numba_status()
    if ok:
        return "numba"
    c_ok, c_why = c_status()
    if c_ok:
        if warn is not None:
            warn("Numba is not available (%s); using the C engine" % why)
        return "c"
    raise NbsimError("no engine available: numba (%s), c (%s)" % (why, c_why))


def run(name, threads, *arrays):
    """Run engine ``name`` on the packed arrays (see nbsim.engines.params)."""
    global _active
    if name == "numba":
        from . import numba_engine, numba_kernel
        from .._jit import compile_with_notice
        compile_with_notice(numba_kernel.render, arrays)    # the first compile says so
        numba_engine.render(threads, *arrays)
    elif name == "c":
        from . import c_engine
        c_engine.render(threads, *arrays)
    else:  # pragma: no cover - resolve() guards this
        raise NbsimError("unknown engine %s" % name)
    _active = name


def active(job=None):
    """Without ``job``: the engine that rendered last in this process (None before the
    first render). With a job (a Simulation, Config or Plan): the engine that will
    render it under "auto" (or $NBSIM_ENGINE), decided before rendering."""
    if job is None:
        return _active
    from ..simulation import which_engine
    return which_engine(job)
