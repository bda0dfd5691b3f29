"""Batch jobs: a whole dataset from one job file, shared among ranks, restartable.

    nbsim-batch JOB.json|JOB.toml [--dry-run] [--force] [--rank R --ranks N]
                [--schedule dynamic|static] [--allow-outside] [--stale-after S]

A job file describes frames that differ in a few flags: a rotation series steps
``-phi``, a dose series steps ``-fluence``, and so on. Each frame is exactly one
``nanoBragg`` command line (the same flags, the same outputs, the same log as if
typed by hand), so a frame's files do not depend on which rank rendered it, on how
many ranks there were, on the schedule or on thread counts.

Job file keys (JSON, or TOML with the same structure):

``args``       nanoBragg arguments shared by every frame (a string or a list)
``frames``     number of frames (1 to 1,000,000)
``vary``       per-frame values: ``{"-phi": {"start": 0, "step": 0.5}}`` gives frame
               f the value start + f*step; ``{"-distance": [100, 120, ...]}`` lists
               one value per frame (finite numbers or words)
``name``       prefix of the output names (default: the job file's name); a plain
               name, no folders
``directory``  output folder, relative to the job file's folder (default: ``name``);
               it must stay inside that folder unless ``--allow-outside``
``outputs``    ``{flag: template}`` for the frame's files (``-floatfile``, ``-intfile``,
               ``-noisefile``, ``-pgmfile``, and nbsim's ``-tifffile``, ``-cbffile``,
               ``-pngfile``, ``-nexusfile``, ``-geomfile``), with ``{name}`` and
               ``{frame}`` fields and optional format specs (``{frame:05d}``); no
               other fields, lookups or conversions, widths of at most 64, and the
               names must stay inside the output folder unless ``--allow-outside``
               (default: ``-floatfile {name}_{frame:05d}.bin``, ``-intfile
               {name}_{frame:05d}.img`` and, unless ``-nonoise``, ``-noisefile
               {name}_noise_{frame:05d}.img``). Images nanoBragg always writes but
               ``outputs`` does not name go to the null device; the PGM preview is
               written only when ``outputs`` names ``-pgmfile`` (else ``-nopgm``)
``seed``       noise seed of frame 0 (default 1); frame f uses seed + f unless
               ``args`` or ``vary`` set ``-seed``: the reference's default seed is the
               clock, which no rerun could reproduce
``nexus``      one NXmx file for the whole scan, e.g. ``{"file": "{name}.nxs",
               "data": "float", "layout": "stacked"}``: ``data`` float|int|noise (int
               needs ``-scale`` in ``args``), ``layout`` ``stacked`` (the frames copied
               into ``/entry/data/data`` [frames, slow, fast] from their ``-floatfile``,
               ``-intfile`` or ``-noisefile``) or ``master`` (each frame also writes an
               NXmx file, named by ``frame_file``, default ``{name}_{frame:05d}.nxs``;
               the scan file maps them with a virtual dataset); ``file`` has ``{name}``
               only. The frames must be one φ scan of one geometry: ``-phi`` stepping
               by ``-osc`` (or a still series with ``-osc 0``), nothing else changing
               the detector, beam or image scale; the file is (re)written once every
               frame is done, by whichever rank finishes last (see :mod:`.scanfile`)
``split_rows`` N (2 to 256): render each frame in N parts of its slow rows, each a
               unit of work for any rank; the rank that saves a frame's last part
               assembles it, byte-identical to a whole render (see :mod:`.split`)

Input files named in ``args``, and the output names, are relative to the job file's
folder (frames run there, so a structure-factor cache ``Fdump.bin`` lands there too).

Modules: :mod:`.job` (job files), :mod:`.template` (output names), :mod:`.ranks`
(ranks and schedules), :mod:`.claims` (who renders which frame), :mod:`.markers`
(what is done and still intact), :mod:`.split` (frames in row parts),
:mod:`.scanfile` (one NXmx file per scan), :mod:`.progress` (lines per frame) and
:mod:`.runner` (the command).
"""
from .claims import Claims
from .job import DEFAULT_OUTPUTS, MAX_FRAMES, OUTPUT_FLAGS, Job, load_job
from .markers import Digests
from .ranks import Schedule, default_threads, rank_and_size, ranks_on_this_node
from .runner import build_parser, check_frame, is_done, main, render_frame, run

__all__ = ["Claims", "DEFAULT_OUTPUTS", "Digests", "Job", "MAX_FRAMES", "OUTPUT_FLAGS",
           "Schedule", "build_parser", "check_frame", "default_threads", "is_done",
           "load_job", "main", "rank_and_size", "ranks_on_this_node", "render_frame", "run"]
