"""The Python API: ``nbsim.Simulation``, ``nbsim.simulate``, ``nbsim.scan`` and
``nbsim.which_engine``.

A :class:`Simulation` is built from keywords in everyday units (see
:mod:`nbsim.keywords` for the list, or ``print(nbsim.keywords_help())``), from a
nanoBragg command line, or from a :class:`nbsim.config.Config`. It is checked when
it is made: an unknown keyword, a wrong type or shape, a value out of physical range
or an impossible setup raises one :class:`nbsim.NbsimError` naming the keyword and
its unit, and the reference's setup (the plan) is done then, once.

Keywords become the nanoBragg flags that mean the same thing, parsed by the
command's own parser, so ``Simulation(...).to_args()`` is the equivalent command
line and renders the same bits. Nothing is read from or written to the working
folder unless a keyword names the file (in particular no ``Fdump.bin``).
"""
from __future__ import annotations

import time
import warnings
from typing import Iterator

from .config import Config, Convention, Pivot
from .errors import NbsimError, NbsimWarning

__all__ = ["Simulation", "simulate", "scan", "which_engine", "keywords_help"]

# keyword pairs that say the same thing two ways: one of each pair, please
_EXCLUSIVE = (("wavelength_A", "energy_eV"), ("Fhkl", "hkl_file"), ("cell", "A_matrix"),
              ("mat_file", "A_matrix"), ("cell", "mat_file"), ("mask", "mask_file"),
              ("N_cells", "crystal_size_mm"), ("detpixels", "detsize_mm"),
              ("divergence_mrad", "hdivrange_mrad"), ("divergence_mrad", "vdivrange_mrad"),
              ("divsteps", "hdivsteps"), ("divsteps", "vdivsteps"))
# in-memory inputs, and the keywords that replace each when given
_MEMORY = {"structure_factors": ("Fhkl", "hkl_file"),
           "A_matrix": ("A_matrix", "cell", "mat_file"),
           "mask": ("mask", "mask_file")}
_FORCED_PIVOT = {Convention.XDS: Pivot.SAMPLE, Convention.DIALS: Pivot.SAMPLE}


def _python_warn(message):
    warnings.warn(message, NbsimWarning, stacklevel=3)


def keywords_help():
    """Every keyword of :class:`Simulation` with its unit and meaning, one per line."""
    from .keywords import describe
    return "\n".join(describe())


class Simulation:
    """A diffraction image to render, described by keywords in everyday units.

    >>> sim = nbsim.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100,
    ...                        N_cells=5, wavelength_A=6.2, detpixels=128, seed=1)
    >>> result = sim.run()            # result.float_image: (slow, fast) photons/pixel

    Lengths are in the unit the keyword names (``distance_mm``, ``wavelength_A``),
    angles in degrees, detector sizes and positions (slow, fast). Keywords left out
    take nanoBragg's defaults (100 mm distance, 1 Angstrom, 0.1 mm pixels, ...).
    ``seed`` defaults to the time, as the command line does; the one chosen is
    :attr:`seed`, and :meth:`replace` and :meth:`scan` keep it.
    """

    def __init__(self, **keywords):
        self._setup([], {}, keywords, {})

    # ---- other ways to make one -------------------------------------------------------

    @classmethod
    def from_args(cls, argv):
        """A Simulation from nanoBragg command-line words (or one string)."""
        config = Config.from_args(argv, warn=_python_warn)
        return cls.from_config(config)

    @classmethod
    def from_config(cls, config: Config):
        """A Simulation of an existing Config (in-memory inputs included)."""
        if not isinstance(config, Config):
            raise NbsimError("from_config: expected an nbsim.config.Config, got %s"
                             % type(config).__name__)
        config.validate()
        memory = {k: getattr(config.crystal if k != "mask" else config.detector, k)
                  for k in _MEMORY}
        memory = {k: v for k, v in memory.items() if v is not None}
        bare = config
        if "mask" in memory and config.detector.mask_file is not None:
            del memory["mask"]             # read back from its file
        if memory:
            bare = config.replace(**{k: None for k in memory})
        self = cls.__new__(cls)
        self._setup(bare.to_args(), memory, {}, {})
        return self

    def replace(self, **keywords):
        """A copy with some keywords changed or added (the seed stays the same unless
        it is one of them)."""
        merged = dict(self._keywords)
        merged.update(keywords)
        new = type(self).__new__(type(self))
        new._setup(self._base_args, self._base_memory, merged, self._cache)
        return new

    # ---- building --------------------------------------------------------------------

    def _setup(self, base_args, base_memory, keywords, cache):
        from .config_args import config_from_argv
        from .keywords import keyword_words
        self._base_args = list(base_args)
        self._base_memory = dict(base_memory)
        self._cache = cache                    # structure-factor tables, shared by copies
        keywords = dict(keywords)
        for a, b in _EXCLUSIVE:
            if a in keywords and b in keywords and keywords[a] is not None \
                    and keywords[b] is not None:
                raise NbsimError("%s and %s: give one of them, not both" % (a, b))
        # the command's default seeds are the time; choose them now and keep them
        now = int(time.time())
        if not base_args and keywords.get("seed") is None:
            keywords["seed"] = now
        if isinstance(keywords.get("misset_deg"), str) and keywords.get("misset_seed") is None:
            keywords["misset_seed"] = now
        keywords = {k: v for k, v in keywords.items()
                    if not (v is None and k in ("seed", "misset_seed"))}
        self._keywords = keywords
        words, extras = keyword_words(keywords)
        convention = extras.get("_convention")
        if extras["_vectors"] and convention != "custom":
            raise NbsimError("%s: custom axes are used only with convention='custom' (which also "
                             "changes the beam-centre defaults to xclose_mm/yclose_mm, as in "
                             "nanoBragg.c)" % extras["_vectors"][0])
        if convention == "custom" and not extras["_vectors"]:
            words = ["-fdet_vector", "0", "0", "1"] + words    # selects it; the default axis
        pivot = extras.get("_pivot")
        if pivot is not None:
            words += ["-pivot", pivot]
        argv = self._base_args + words + extras["_tail"]

        heard = []
        config = config_from_argv(argv, warn=heard.append)
        memory = dict(self._base_memory)
        for field, replaced_by in _MEMORY.items():
            if any(k in keywords for k in replaced_by):
                memory.pop(field, None)
            if field in extras:
                memory[field] = extras[field]
        if any(k in keywords for k in ("Fhkl", "hkl_file")) and "structure_factors" in memory:
            config = config.replace(hkl_file=None)
        if "A_matrix" in memory and any(k in keywords for k in ("A_matrix",)):
            config = config.replace(cell=None, mat_file=None)
        if "mask" in memory:
            config = config.replace(mask_file=None)
        if memory:
            config = config.replace(**memory)
        if extras["_fields"]:
            config = config.replace(**extras["_fields"])
        self._check_meaning(config, keywords, pivot)
        config.validate()
        self._config = config
        # notices about choices the keywords made explicit are noise here: the custom
        # convention named as such, and the pivot where it was given or is the
        # convention's own (only the custom convention takes one)
        quiet = []
        if convention == "custom":
            quiet.append("selects the CUSTOM detector convention")
        if pivot is not None or config.detector.convention != Convention.CUSTOM:
            quiet += ["detector pivot is", "forces -pivot"]
        for message in heard:
            if not any(q in message for q in quiet):
                _python_warn(message)
        self._plan = self._make_plan(config, quiet)

    @staticmethod
    def _check_meaning(config, keywords, pivot):
        d = config.detector
        if pivot is not None and d.convention != Convention.CUSTOM:
            forced = _FORCED_PIVOT.get(d.convention, Pivot.BEAM)
            if forced.value != pivot:
                raise NbsimError("pivot: the %s convention always uses the %s pivot, as in "
                                 "nanoBragg.c; give convention='custom' to choose"
                                 % (d.convention.value, forced.value))
        if "misset_seed" in keywords and not config.crystal.misset_random:
            raise NbsimError("misset_seed: used only with misset_deg='random'")

    def _make_plan(self, config, quiet=()):
        from .keywords import in_keyword_terms
        from .plan import MissingInputs, make_plan
        try:
            plan = make_plan(config, hkl_cache=self._cache)
        except MissingInputs as exc:
            raise NbsimError("nothing to render: %s" % (
                "no unit cell (give cell, A_matrix or mat_file)" if "cell" in str(exc)
                else "no structure factors (give Fhkl, hkl_file, default_F or dump_file)")) \
                from None
        except NbsimError as exc:
            raise NbsimError(in_keyword_terms(str(exc))) from None
        for message in plan.extra.get("warnings", []):
            if not any(q in message for q in quiet):
                _python_warn(message)
        return plan

    # ---- what it is ------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The Config (SI units) shared with the command line."""
        return self._config

    @property
    def keywords(self) -> dict:
        """The keywords as given (plus the seeds chosen for you)."""
        return dict(self._keywords)

    @property
    def seed(self) -> int:
        """The noise seed, as ``seed=`` / ``-seed`` take it."""
        return -self._config.noise.seed

    @property
    def detector(self):
        """The placed detector (:class:`nbsim.detector_info.DetectorInfo`)."""
        from .detector_info import detector_info
        return detector_info(self._plan)

    def plan(self):
        """The reference's setup for this Simulation (:class:`nbsim.plan.Plan`)."""
        return self._plan

    def to_args(self, inputs_dir=None):
        """The equivalent nanoBragg command line (see :meth:`Config.to_args`)."""
        return self._config.to_args(inputs_dir=inputs_dir)

    def which_engine(self, engine=None):
        """The engine that :meth:`run` will use (before anything renders)."""
        from .api import choose_engine
        return choose_engine(self._plan, engine, warn=lambda _m: None)

    def __repr__(self):
        def short(v):
            r = repr(v)
            return r if len(r) <= 40 else r[:37] + "..."
        inner = ", ".join("%s=%s" % (k, short(v)) for k, v in self._keywords.items())
        if self._base_args:
            inner = "args=%s%s" % (short(" ".join(self._base_args)), ", " + inner if inner else "")
        return "Simulation(%s)" % inner

    # ---- rendering ---------------------------------------------------------------------

    def run(self, engine=None, threads=None, progress=None, warn=None, plan=None):
        """Render: a :class:`nbsim.api.Result` with ``float_image`` (slow, fast) in
        photons/pixel, ``int_image``, ``noise_image``, ``stats`` and ``detector``.

        ``engine``: "auto", "numba" or "c" (None: $NBSIM_ENGINE, else "auto");
        ``threads``: engine threads (default all cores); ``progress(done_pixels,
        total_pixels)``: called between row blocks in this thread; ``warn(message)``: engine fallback notices (default: Python
        warnings).
        """
        return _render(self._config, plan if plan is not None else self._plan, engine,
                       threads, progress, warn)

    def scan(self, engine=None, threads=None, progress=None, **series) -> Iterator:
        """Render a series of frames, one per value: ``sim.scan(phi_deg=[0, 0.5, 1])``
        yields one Result per φ. Several keywords scan together (equal lengths).

        Frames share the structure-factor table and the compiled kernels; each
        frame is exactly what ``sim.replace(**that_frame).run()`` gives.
        """
        return _scan_frames(self, engine, threads, progress, series)


def _scan_frames(sim, engine, threads, progress, series):
    if not series:
        raise NbsimError("scan: name the keyword(s) to vary, e.g. scan(phi_deg=[0, 0.1])")
    lengths = {}
    columns = {}
    for name, values in series.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise NbsimError("scan: %s must be a sequence of values, one per frame" % name)
        columns[name] = list(values)
        lengths[name] = len(columns[name])
    if len(set(lengths.values())) > 1:
        raise NbsimError("scan: series of different lengths (%s)"
                         % ", ".join("%s: %d" % kv for kv in lengths.items()))
    frames = [sim.replace(**{k: columns[k][i] for k in columns})
              for i in range(next(iter(lengths.values())))]   # all checked before rendering

    def frames_out():
        for frame in frames:
            yield frame.run(engine=engine, threads=threads, progress=progress)
    return frames_out()


def _dump_if_asked(plan):
    """Write the structure-factor cache when the config names one and structure factors
    were given (the command line does this itself, for the reference's Fdump.bin)."""
    cr = plan.config.crystal
    if cr.dump_file is None or plan.hkl_table is None or plan.extra.get("dump_written"):
        return
    if cr.hkl_file is None and cr.structure_factors is None:
        return                                   # the table came from the dump itself
    from .io.hkl import write_fdump
    write_fdump(cr.dump_file, plan.hkl_table)
    plan.extra["dump_written"] = True


def _render(config, plan, engine, threads, progress, warn):
    from . import api
    from .config_args import differing_fields
    if plan.config is not config:
        wrong = differing_fields(plan.config, config)
        if wrong:
            raise NbsimError("plan: made from a different config (%s differ); make the plan "
                             "from this config" % ", ".join(wrong[:5]))
    _dump_if_asked(plan)
    return api.simulate(config, engine=engine, threads=threads, plan=plan,
                        warn=warn or _python_warn, progress=progress)


def simulate(job=None, *, engine=None, threads=None, plan=None, warn=None, progress=None,
             **keywords):
    """Render one image; returns a :class:`nbsim.api.Result`.

    ``job`` is a :class:`Simulation`, a :class:`nbsim.config.Config`, nanoBragg
    command-line words, or nothing, with keywords as :class:`Simulation` takes them
    (keywords given with a job change it, as :meth:`Simulation.replace`).
    ``plan``: a Plan made from the same Config (``nbsim.plan.make_plan``), to render
    it again without redoing the setup. ``engine``, ``threads``, ``progress`` and
    ``warn`` are as in :meth:`Simulation.run`.
    """
    if isinstance(job, Config):
        if keywords:
            job = Simulation.from_config(job)
        else:
            job.validate()
            if plan is None:
                from .plan import make_plan
                plan = make_plan(job)
                for message in plan.extra.get("warnings", []):
                    _python_warn(message)
            return _render(job, plan, engine, threads, progress, warn)
    elif isinstance(job, (str, list, tuple)):
        job = Simulation.from_args(job)
    elif job is None:
        if not keywords:
            raise NbsimError("simulate: give a Simulation, a Config, command-line words or "
                             "keywords (see nbsim.keywords_help())")
        return Simulation(**keywords).run(engine=engine, threads=threads, progress=progress,
                                          warn=warn, plan=plan)
    elif not isinstance(job, Simulation):
        raise NbsimError("simulate: expected a Simulation, a Config or command-line words, "
                         "got %s" % type(job).__name__)
    if keywords:
        job = job.replace(**keywords)
    return job.run(engine=engine, threads=threads, progress=progress, warn=warn, plan=plan)


def scan(job, engine=None, threads=None, progress=None, **series):
    """``nbsim.scan(sim, phi_deg=[...])``: :meth:`Simulation.scan` for a Simulation, a
    Config or command-line words."""
    if isinstance(job, Config):
        job = Simulation.from_config(job)
    elif isinstance(job, (str, list, tuple)):
        job = Simulation.from_args(job)
    elif not isinstance(job, Simulation):
        raise NbsimError("scan: expected a Simulation, a Config or command-line words, got %s"
                         % type(job).__name__)
    return job.scan(engine=engine, threads=threads, progress=progress, **series)


def which_engine(job, engine=None):
    """The engine that rendering ``job`` (a Simulation, Config or Plan) with ``engine``
    ("auto", "numba", "c" or None for $NBSIM_ENGINE) will use, decided by the same rule
    (:func:`nbsim.api.choose_engine`) before anything renders."""
    from .api import choose_engine
    from .plan import Plan, make_plan
    if isinstance(job, Simulation):
        plan = job.plan()
    elif isinstance(job, Plan):
        plan = job
    elif isinstance(job, Config):
        plan = make_plan(job.validate())
    else:
        raise NbsimError("which_engine: expected a Simulation, Config or Plan, got %s"
                         % type(job).__name__)
    return choose_engine(plan, engine, warn=lambda _m: None)
