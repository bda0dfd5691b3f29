"""The drop-in ``nanoBragg`` command: flags → Config → simulate → files.

No physics here. Reference flags are applied by :mod:`nbsim.flags` exactly as
nanoBragg.c applies them; nbsim-only flags are handled first:

  -engine numba|c|auto   which engine renders (default auto, or $NBSIM_ENGINE)
  -threads N             threads for the engine (default: all cores)
  -c_parity              reproduce the reference's φ=0 carry-over defect
  -fast                  fast mode (see README; accuracy stated there)
  -tifffile FILE         also write the float image as a float32 TIFF (with geometry tags)
  -nexusfile FILE        also write an NXmx (NeXus/HDF5) file; -nexus_data float|int|noise
  -cbffile FILE          also write a Pilatus-style miniCBF of the photon counts
  -geomfile FILE         also write a CrystFEL geometry file for the NXmx file
  -pngfile FILE          also write a PNG preview (log scale; -png_scale PHOTONS is white)
  -max_evaluations N     cap on the job's work (see nbsim.limits)
  -max_table_gb G        cap on the tables built before rendering
  -version               print the nbsim version
  -h, -help, --help      list every flag
"""
from __future__ import annotations

import math
import os
import re
import sys
import time

from . import __version__
from .config import Config, flat_defaults
from .errors import NbsimError
from .io.cparse import fmt_g, printable

NBSIM_FLAGS = {"-engine": 1, "-threads": 1, "-c_parity": 0, "-fast": 0, "-tifffile": 1,
               "-nexusfile": 1, "-nexus_data": 1, "-cbffile": 1, "-geomfile": 1,
               "-pngfile": 1, "-png_scale": 1,
               "-max_evaluations": 1, "-max_table_gb": 1,
               "-version": 0, "--version": 0, "-h": 0, "-help": 0, "--help": 0}

# nbsim-only output files: flag -> OutputConfig field
OUTPUT_FILE_FLAGS = {"-tifffile": "tifffile", "-nexusfile": "nexusfile", "-cbffile": "cbffile",
                     "-geomfile": "geomfile", "-pngfile": "pngfile"}
NEXUS_DATA = ("float", "int", "noise")


MAX_THREADS = 1024
_ASCII_INT = re.compile(r"\A[+]?[0-9]+\Z")


def _warn(msg):
    print("nbsim: warning: %s" % msg, file=sys.stderr)


# defaults as the reference applies them, for -h
FLAG_DEFAULTS = {
    "-N": "1", "-Na": "1", "-Nb": "1", "-Nc": "1", "-misset": "0 0 0", "-lambda": "1",
    "-distance": "100", "-detsize": "102.4", "-pixel": "0.1", "-detpixels": "from -detsize",
    "-Xbeam": "detector centre", "-Ybeam": "detector centre", "-pivot": "beam",
    "-mosflm": "on", "-twotheta": "0", "-detector_rotx": "0", "-detector_roty": "0",
    "-detector_rotz": "0", "-detector_abs": "inf (no absorption)", "-detector_thick": "0",
    "-detector_thicksteps": "1", "-thicksteps": "1", "-oversample": "auto",
    "-fluence": "1.25932e+29", "-flux": "0 (use -fluence)", "-exposure": "1 s",
    "-beamsize": "0.1", "-mosaic": "0", "-mosaic_dom": "10 if -mosaic is given, else 1",
    "-dispersion": "0", "-dispsteps": "auto", "-divergence": "0", "-hdivrange": "0",
    "-vdivrange": "0", "-hdivstep": "auto", "-vdivstep": "auto", "-hdivsteps": "auto",
    "-vdivsteps": "auto", "-divsteps": "auto", "-phi": "0", "-osc": "0", "-phistep": "auto",
    "-phisteps": "1", "-dmin": "0 (off)", "-default_F": "0", "-dump": "Fdump.bin",
    "-floatfile": "floatimage.bin", "-intfile": "intimage.img", "-noisefile": "noiseimage.img",
    "-pgmfile": "image.pgm", "-scale": "auto (55000/max)", "-pgmscale": "auto",
    "-adc": "40", "-polar": "0 (unpolarized)", "-fudge": "1", "-seed": "the time",
    "-mosaic_seed": "12345678", "-misset_seed": "the time (not -seed)", "-water": "0",
"-xtalsize": "from -N", "-roi": "whole detector",
    "-interpolate": "auto: on if any N <= 2", "-round_div": "on",
}


def usage_text():
    from .flags import usage_lines
    lines = ["usage: nanoBragg -cell a b c al be ga | -mat FILE  -hkl FILE | -default_F F  [options]",
             "nbsim %s: a drop-in, bit-identical successor to nanoBragg.c." % __version__,
             "Lengths in mm unless stated; angles in degrees. Flags:"]
    for names, args, doc in usage_lines():
        default = FLAG_DEFAULTS.get(names.split()[0])
        if default:
            doc += " [default: %s]" % default
        lines.append("  %-44s %s" % ((names + " " + args).strip(), doc))
    lines += [
        "nbsim-only flags:",
        "  -engine numba|c|auto                         engine (default auto; env NBSIM_ENGINE)",
        "  -threads <int>                               engine threads (default: all cores)",
        "  -c_parity                                    reproduce nanoBragg.c's phi=0 carry-over",
        "  -fast                                        fast mode (not bit-identical; see README)",
        "  -tifffile <file>                             also write the float image as TIFF",
        "                                               (geometry in its tags and description)",
        "  -nexusfile <file>                            also write an NXmx NeXus/HDF5 file",
        "  -nexus_data float|int|noise                  image the NXmx file holds (default float)",
        "  -cbffile <file>                              also write a miniCBF (Pilatus header) of",
        "                                               the noise image's photon counts, or of",
        "                                               the rounded photons with -nonoise",
        "  -geomfile <file>                             also write a CrystFEL .geom for the",
        "                                               NXmx file",
        "  -pngfile <file>                              also write an 8-bit PNG preview (log",
        "                                               scale, beam centre marked in red)",
        "  -png_scale <photons>                         pixel value shown white in the PNG",
        "                                               (default: 99.9th percentile)",
        "  -max_evaluations <num>                       refuse jobs of more inner evaluations "
        "(pixels x sub-pixels^2 x layers x sources x phi steps x domains) [default: 1e14; "
        "env NBSIM_MAX_EVALUATIONS; inf: no cap]",
        "  -max_table_gb <num>                          refuse larger lattice/source/structure-"
        "factor tables [default: 32 GB; env NBSIM_MAX_TABLE_GB; inf: no cap]",
        "  -version                                     print the version",
        "defaults: -lambda 1 -distance 100 -detsize 102.4 -pixel 0.1 -N 1 -adc 40",
        "  -fluence 1.26e29 -beamsize 0.1 -exposure 1 -mosaic_seed 12345678 -seed <time>",
        "  outputs floatimage.bin intimage.img image.pgm noiseimage.img (and Fdump.bin with -hkl)",
    ]
    return "\n".join(lines)


def _ingest_header(v, path, is_mask):
    """Detector settings from an SMV header, applied before the flags (as the reference)."""
    from .io.smv import read_smv
    flag = "-mask" if is_mask else "-img"
    try:
        frame = read_smv(path)
    except NbsimError as exc:
        raise NbsimError("%s: %s" % (flag, exc)) from None
    # the reference's reader announces the file and the address of its pixel buffer
    # (an address of nbsim's own buffer here: the same shape, not the same number)
    v.setdefault("_preamble", []).extend([
        "reading %s" % path, "mmap(%s) = 0x%x" % (path, frame.data.__array_interface__["data"][0])])
    if frame.byte_order_mismatch:
        _warn("%s: BYTE_ORDER differs from this machine; pixels are read unswapped, as "
              "nanoBragg.c does" % path)
    rtd = 180.0 * (1.0 / math.pi)
    v["fpixels"], v["spixels"] = frame.width, frame.height
    x = frame.value_of("PIXEL_SIZE")
    if not math.isnan(x):
        v["pixel_size"] = x / 1000.0
    v["detsize_f"] = v["pixel_size"] * frame.width
    v["detsize_s"] = v["pixel_size"] * frame.height
    for key, field, scale in (("DISTANCE", "distance", 1000.0),
                              ("CLOSE_DISTANCE", "close_distance", 1000.0),
                              ("WAVELENGTH", "lambda0", 1e10)):
        x = frame.value_of(key)
        if not math.isnan(x):
            v[field] = x / scale
    x = frame.value_of("BEAM_CENTER_X")
    if not math.isnan(x):
        v["xbeam"] = x / 1000.0
    x = frame.value_of("BEAM_CENTER_Y")
    if not math.isnan(x):
        # a mask's Y centre is read from the other edge, an image's is not
        v["ybeam"] = (v["detsize_s"] - x / 1000.0) if is_mask else x / 1000.0
    for key, field in (("ORGX", "orgx"), ("ORGY", "orgy")):
        x = frame.value_of(key)
        if not math.isnan(x):
            v[field] = x
    x = frame.value_of("PHI")
    if not math.isnan(x):
        v["phi0"] = x / rtd
    x = frame.value_of("OSC_RANGE")
    if not math.isnan(x):
        v["osc"] = x / rtd
    if is_mask:
        v["mask"] = frame.data
        v["mask_file"] = path
    # non-finite header values, to name them if the image then comes out NaN
    fields = (("PIXEL_SIZE", "pixel_size"), ("DISTANCE", "distance"),
              ("CLOSE_DISTANCE", "close_distance"), ("WAVELENGTH", "lambda0"),
              ("BEAM_CENTER_X", "xbeam"), ("BEAM_CENTER_Y", "ybeam"), ("ORGX", "orgx"),
              ("ORGY", "orgy"), ("PHI", "phi0"), ("OSC_RANGE", "osc"))
    for key, field in fields:
        x = frame.value_of(key)
        if math.isinf(x):
            v.setdefault("_header_nonfinite", []).append((flag, path, key, x, field, v[field]))


def config_from_args(args, warn=_warn):
    """(Config, nbsim options dict) from argv without the program name."""
    from .config import Convention  # noqa: F401
    from .flags import apply_reference_rules

    opts = {"engine": None, "threads": None, "c_parity": False, "fast": False,
            "tifffile": None, "nexusfile": None, "nexus_data": "float", "cbffile": None,
            "geomfile": None, "pngfile": None, "png_scale": None,
            "version": False, "help": False, "max_evaluations": None,
            "max_table_gb": None}
    from .flags import known_flag
    positions = {}
    i = 0
    while i < len(args):
        w = args[i]
        if w in NBSIM_FLAGS:
            n = NBSIM_FLAGS[w]
            positions[i] = n
            if i + n >= len(args):
                raise NbsimError("%s: missing value" % w)
            if n and (args[i + 1] in NBSIM_FLAGS or known_flag(args[i + 1])):
                raise NbsimError("%s: missing value (got the flag %s instead)" % (w, args[i + 1]))
            if w == "-engine":
                opts["engine"] = args[i + 1]
            elif w == "-threads":
                if not _ASCII_INT.match(args[i + 1]):
                    raise NbsimError("-threads: expected an integer, got '%s'"
                                     % printable(args[i + 1]))
                opts["threads"] = int(args[i + 1])
                if opts["threads"] <= 0:
                    raise NbsimError("-threads: must be positive")
                if opts["threads"] > MAX_THREADS:
                    raise NbsimError("-threads: %d is more than nbsim starts (%d at most)"
                                     % (opts["threads"], MAX_THREADS))
            elif w == "-c_parity":
                opts["c_parity"] = True
            elif w == "-fast":
                opts["fast"] = True
            elif w in OUTPUT_FILE_FLAGS:
                opts[OUTPUT_FILE_FLAGS[w]] = args[i + 1]
                if not args[i + 1]:
                    raise NbsimError("%s: empty file name" % w)
            elif w == "-nexus_data":
                if args[i + 1] not in NEXUS_DATA:
                    raise NbsimError("-nexus_data: expected float, int or noise, got '%s'"
                                     % args[i + 1])
                opts["nexus_data"] = args[i + 1]
            elif w == "-png_scale":
                from .flags import check_number
                check_number(w, args[i + 1])          # ASCII digits only, as C reads them
                opts["png_scale"] = float(args[i + 1])
                if not (opts["png_scale"] > 0.0 and math.isfinite(opts["png_scale"])):
                    raise NbsimError("-png_scale: must be a positive number of photons (got %s)"
                                     % args[i + 1])
            elif w in ("-max_evaluations", "-max_table_gb"):
                from .limits import parse_limit
                opts[w[1:]] = parse_limit(w, args[i + 1])
            elif w in ("-version", "--version"):
                opts["version"] = True
            else:
                opts["help"] = True
            i += 1 + n
            continue
        i += 1
    if opts["help"] or opts["version"]:
        return None, opts

    v = flat_defaults()
    seed = -int(time.time())
    v["seed"] = seed
    v["misset_seed"] = seed      # the reference takes the time seed here, not -seed
    v.update(user_cell=False, misset_mode=None, printout=False, printout_pixel=None)

    # -mask and -img are read first, mask before image, whatever their order
    img = mask = None
    for j, w in enumerate(args):
        if w.startswith("-") and j + 1 < len(args):
            if "-img" in w:
                img = args[j + 1]
            if "-mask" in w:
                mask = args[j + 1]
    if mask is not None:
        _ingest_header(v, mask, True)
    if img is not None:
        _ingest_header(v, img, False)

    opts["preamble"] = v.pop("_preamble", [])
    apply_reference_rules(v, args, positions, warn)
    # header values a flag did not replace
    opts["header_nonfinite"] = ["%s=%s in the %s header of '%s'" % (key, fmt_g(x), flag, path)
                                for flag, path, key, x, field, value in v.pop("_header_nonfinite", [])
                                if v[field] is value]
    from .flags import implicit_switch_warnings
    for message in implicit_switch_warnings(v):
        warn(message)

    if v.pop("user_cell"):
        v["cell"] = tuple(v.pop("_cell_raw", [0.0] * 6))
    else:
        v.pop("_cell_raw", None)
    mode = v.pop("misset_mode")
    if mode == "random":
        v["misset_random"] = True
        v["misset"] = None
    elif mode is None:
        v["misset"] = None
    v["c_parity"] = opts["c_parity"]
    v["fast"] = opts["fast"]
    for key in ("tifffile", "nexusfile", "nexus_data", "cbffile", "geomfile", "pngfile",
                "png_scale"):
        v[key] = opts[key]
    v["max_evaluations"] = opts["max_evaluations"]
    v["max_table_gb"] = opts["max_table_gb"]
    if v["mask"] is not None:
        m = v["mask"]
        from .geometry import detector_size
        probe = Config.from_flat(dict(v))
        fp, sp, _, _ = detector_size(probe)
        if m.shape != (sp, fp):
            raise NbsimError("-mask: %s is %dx%d pixels but the detector is %dx%d"
                             % (v["mask_file"], m.shape[1], m.shape[0], fp, sp))
    return Config.from_flat(v), opts


# the reference's structure-factor cache, in the working folder: read when there is no
# -hkl, written when there is one. The command keeps it; the Python API has none unless asked.
COMMAND_DUMP_FILE = "Fdump.bin"


def command_config(args, warn=_warn):
    """(Config, options) as the ``nanoBragg`` command runs them: :func:`config_from_args`
    plus the command's implicit ``Fdump.bin`` cache."""
    cfg, opts = config_from_args(args, warn)
    if cfg is not None and cfg.crystal.dump_file is None:
        cfg = cfg.replace(dump_file=COMMAND_DUMP_FILE)
    return cfg, opts


def _startable_threads(n):
    """How many threads (the main one included, each with the default stack) this
    process can have at once, up to ``n``: a memory limit (ulimit -v) or a process
    limit may allow fewer than asked, and OpenMP then aborts the whole process."""
    import threading
    release = threading.Event()
    started = []
    try:
        for _ in range(n - 1):
            t = threading.Thread(target=release.wait, daemon=True)
            t.start()
            started.append(t)
    except RuntimeError:     # "can't start new thread"
        pass
    finally:
        release.set()
        for t in started:
            t.join()
    return len(started) + 1


def _affordable_threads(threads, warn):
    """``threads`` (None: every core), or fewer with a warning when this process
    cannot start that many; checked only where it can fail (a resource limit is set,
    or more threads than cores are asked for)."""
    import resource
    wanted = threads or os.cpu_count() or 1
    limited = any(resource.getrlimit(r)[0] != resource.RLIM_INFINITY
                  for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC))
    if wanted <= 1 or not (limited or wanted > (os.cpu_count() or 1)):
        return threads
    can = _startable_threads(wanted)
    if can >= wanted:
        return threads
    # leave room: the engine's own threads and buffers need memory too
    fallback = max(1, can // 2)
    warn("-threads: only %d of %d threads could be started here (a memory or process "
         "limit?); rendering with %d" % (can, wanted, fallback))
    return fallback


def _check_paths(cfg):
    for flag, path in (("-hkl", cfg.crystal.hkl_file), ("-mat", cfg.crystal.mat_file),
                       ("-sourcefile", cfg.beam.source_file), ("-stol", cfg.crystal.stol_file)):
        if path is None or os.path.isfile(path):
            continue
        from .io.inputs import describe
        raise NbsimError("%s: cannot read '%s' (%s)" % (flag, path, describe(path)))


def _check_outputs(cfg, plan=None):
    """Refuse an output that cannot be written before anything is rendered or written,
    so that a bad -intfile does not leave a fresh floatimage.bin behind."""
    o = cfg.output
    outs = [("-floatfile", o.floatfile), ("-intfile", o.intfile)]
    if o.write_pgm:
        outs.append(("-pgmfile", o.pgmfile))
    if cfg.noise.calculate_noise:
        outs.append(("-noisefile", o.noisefile))
    for flag, field in OUTPUT_FILE_FLAGS.items():
        if getattr(o, field):
            outs.append((flag, getattr(o, field)))
    _check_output_formats(cfg, plan)
    for flag, path in outs:
        if not path:
            raise NbsimError("%s: empty file name" % flag)
        real = os.path.realpath(path)
        if os.path.isdir(real) or path.endswith(os.sep):
            raise NbsimError("%s: cannot write '%s' (it is a directory)" % (flag, path))
        folder = os.path.dirname(real) or "."
        if not os.path.isdir(folder):
            raise NbsimError("%s: cannot write '%s' (folder '%s' does not exist)"
                             % (flag, path, os.path.dirname(path)))
        if os.path.isfile(real) or not os.path.exists(real):
            # a new file or a replaced one: the folder must take the temporary file
            if not os.access(folder, os.W_OK | os.X_OK):
                raise NbsimError("%s: cannot write '%s' (folder '%s' is not writable)"
                                 % (flag, path, os.path.dirname(path) or "."))
        elif not os.access(real, os.W_OK):
            raise NbsimError("%s: cannot write '%s' (permission denied)" % (flag, path))


def _check_output_formats(cfg, plan=None):
    """What the nbsim-only formats need, checked before rendering: their packages,
    a detector the format can hold, and the image asked for."""
    o = cfg.output
    if o.nexusfile:
        from .io.nexus import require_h5py
        require_h5py("-nexusfile")
        if o.nexus_data == "noise" and not cfg.noise.calculate_noise:
            raise NbsimError("-nexus_data noise: there is no noise image (-nonoise was given)")
    if o.cbffile:
        from .geometry import detector_size
        from .io.cbf import check_cbf_size, require_fabio
        require_fabio("-cbffile")
        fpixels, spixels, _, _ = detector_size(cfg)
        check_cbf_size(fpixels, spixels)
        if plan is not None:
            from .experiment import model_from_plan
            if model_from_plan(plan).beam_centre_px is None:
                raise NbsimError("-cbffile: the beam does not meet the detector plane, so a "
                                 "miniCBF header (beam centre, distance) cannot describe it; "
                                 "use -nexusfile")


def run(args, out=None, warn=_warn, hkl_cache=None, simulate=None):
    """Run the command; returns the exit status. Errors raise NbsimError.

    ``hkl_cache``: a dict that keeps structure-factor tables between runs of one
    process (nbsim.batch passes one; see nbsim.plan.make_plan). ``simulate``: what
    renders the frame, called as :func:`nbsim.api.simulate` is (the default);
    nbsim.batch passes one that assembles a frame rendered in row parts."""
    from . import api
    from .io import hkl as hkl_io
    from .plan import MissingInputs, make_plan, refuse_all_nan

    out = out or sys.stdout
    cfg, opts = command_config(args, warn)
    if opts["help"]:
        print(usage_text(), file=out)
        return 0
    if opts["version"]:
        print("nbsim %s" % __version__, file=out)
        return 0
    for line in opts.get("preamble", []):
        print(line, file=out)
    _check_paths(cfg)
    if opts["engine"] is not None:
        from .engines.registry import ENGINES
        if opts["engine"].strip().lower() not in ENGINES + ("auto",):
            raise NbsimError("-engine: unknown engine '%s' (choose numba, c or auto)" % opts["engine"])
    try:
        plan = make_plan(cfg, hkl_cache=hkl_cache)
    except MissingInputs as exc:
        if exc.printed:
            print(exc.printed, file=out, end="")
        print(usage_text(), file=out)
        print("nanoBragg: %s" % exc, file=sys.stderr)
        return 9
    _check_outputs(cfg, plan)
    for w in plan.extra.get("warnings", []):
        warn(w)
    g = plan.geom
    print("nbsim: detector pix0_vector= %g %g %g m; Fbeam=%g Sbeam=%g Fclose=%g Sclose=%g m; "
          "close distance %g m" % (g.pix0 + (g.fbeam, g.sbeam, g.fclose, g.sclose, g.close_distance)),
          file=sys.stderr)
    threads = _affordable_threads(opts["threads"] or api.default_threads(), warn)
    # the log goes to ``out`` as it is produced: the progress meter is live
    res = (simulate or api.simulate)(cfg, engine=opts["engine"], threads=threads, plan=plan,
                                     warn=warn, echo=out)
    notes = opts.get("header_nonfinite")
    refuse_all_nan(plan, res.float_image, "; " + ", ".join(notes) if notes else "")
    # the structure-factor cache the reference writes before rendering, written once the
    # render has succeeded, so that a refused or interrupted run leaves no file behind
    if cfg.crystal.hkl_file is not None and plan.hkl_table is not None:
        try:
            hkl_io.write_fdump(cfg.crystal.dump_file, plan.hkl_table)
        except NbsimError as exc:   # the reference only warns when it cannot cache
            warn("could not write the structure-factor cache: %s" % exc)
    write_outputs(res, out)
    print("nbsim: rendered by the %s engine" % res.engine, file=out)
    return 0


def _smv_header(res, noise):
    from .flags import RTD
    from .io.smv import NATIVE_BYTE_ORDER, format_smv_header
    p = res.plan
    g = p.geom
    ps = p.pixel_size
    denzo_off = (+0.0 if noise else -0.0) * ps
    return format_smv_header(
        fpixels=p.fpixels, spixels=p.spixels, pixel_size_mm=ps * 1000.0,
        distance_mm=g.distance * 1000.0, wavelength_A=p.lambda0 * 1e10,
        beam_center_x_mm=g.xbeam * 1000.0, beam_center_y_mm=g.ybeam * 1000,
        adxv_x_mm=g.fbeam * 1000.0, adxv_y_mm=(g.detsize_s - g.sbeam) * 1000,
        mosflm_x_mm=(g.sbeam - 0.5 * ps) * 1000.0, mosflm_y_mm=(g.fbeam - 0.5 * ps) * 1000,
        denzo_x_mm=(g.sbeam + denzo_off) * 1000.0, denzo_y_mm=(g.fbeam + denzo_off) * 1000,
        dials_origin=g.dials_origin, xds_orgx=g.orgx, xds_orgy=g.orgy,
        close_distance_mm=g.close_distance * 1000.0, phi_deg=p.phi0 * RTD,
        osc_start_deg=p.phi0 * RTD, osc_range_deg=p.osc * RTD,
        twotheta_deg=g.twotheta * RTD, byte_order=NATIVE_BYTE_ORDER)


def write_outputs(res, out=None):
    from .io import pgm, raw, smv
    from .io.cparse import fmt_g
    out = out or sys.stdout
    cfg = res.plan.config
    o = cfg.output
    p = res.plan
    npix = p.fpixels * p.spixels
    print("writing %s as %d 4-byte floats" % (o.floatfile, npix), file=out)
    raw.write_float_image(o.floatfile, res.float_image)
    for line in res.stats.lines():
        print(line, file=out)
    print("intfile_scale = %s" % fmt_g(res.intfile_scale), file=out)
    print("writing %s as 2-byte integers" % o.intfile, file=out)
    smv.write_smv(o.intfile, _smv_header(res, False), res.int_image)
    if res.pgm_image is not None:
        print("pgm_scale = %s" % fmt_g(res.pgm_scale), file=out)
        print("writing %s as 1-byte integers" % o.pgmfile, file=out)
        pgm.write_pgm(o.pgmfile, res.pgm_image, p.fpixels, p.spixels, res.pgm_scale)
    model = None
    if any(getattr(o, f) for f in OUTPUT_FILE_FLAGS.values()):
        from .experiment import model_from_plan
        model = model_from_plan(p)
    if o.tifffile:
        from .io import tiff
        print("writing %s as a float32 TIFF" % o.tifffile, file=out)
        tiff.write_float_tiff(o.tifffile, res.float_image, model)
    if res.noise_image is not None:
        photons = ("-nan" if math.copysign(1.0, res.photons) < 0 else "nan") \
            if math.isnan(res.photons) else "%.0f" % res.photons
        print("%s photons on noise image (%d overloads)" % (photons, res.overloads), file=out)
        print("writing %s as 2-byte integers" % o.noisefile, file=out)
        smv.write_smv(o.noisefile, _smv_header(res, True), res.noise_image)
    if model is not None:
        write_geometry_outputs(res, model, out)


def _rendered_pixels(plan):
    """Bool [slow, fast]: the pixels nbsim rendered (inside -roi and the -mask)."""
    import numpy as np
    xmin, xmax, ymin, ymax = plan.roi
    keep = np.zeros((plan.spixels, plan.fpixels), dtype=bool)
    keep[max(ymin, 0):ymax + 1, max(xmin, 0):xmax + 1] = True
    if plan.mask is not None:
        keep &= plan.mask != 0
    return keep


def write_geometry_outputs(res, model, out=None):
    """The nbsim-only outputs that carry the geometry: NXmx, miniCBF, CrystFEL geometry
    and PNG preview (the TIFF is written with the reference's outputs)."""
    out = out or sys.stdout
    o = res.plan.config.output
    p = res.plan
    if model.curved and (o.nexusfile or o.cbffile or o.geomfile):
        _warn("-curved_det: the NXmx, CBF and CrystFEL outputs describe the detector as "
              "flat (their formats have no curved detector)")
    if o.cbffile and model.is_tilted:
        _warn("-cbffile: a miniCBF header cannot describe a detector that is not "
              "perpendicular to the beam (rotations or two-theta); readers will place it "
              "perpendicular at the true beam centre and distance (use -nexusfile)")
    kind = o.nexus_data
    if o.nexusfile:
        from .io import nexus
        images = {"float": res.float_image, "int": res.int_image, "noise": res.noise_image}
        info = nexus.data_info(kind, model.adc_offset, res.intfile_scale)
        print("writing %s as NXmx NeXus/HDF5 (%s image)" % (o.nexusfile, kind), file=out)
        nexus.write_nxmx(o.nexusfile, model, images[kind], info=info)
    if o.cbffile:
        from .io import cbf
        counts, cutoff = cbf.counts_for_cbf(res.float_image, res.noise_image,
                                            model.adc_offset, _rendered_pixels(p))
        print("writing %s as a miniCBF of %s" % (
            o.cbffile, "noise-image photon counts" if res.noise_image is not None
            else "rounded photons"), file=out)
        cbf.write_minicbf(o.cbffile, counts, model, count_cutoff=cutoff)
    if o.geomfile:
        from .io import crystfel_geom
        adu = res.intfile_scale if kind == "int" else 1.0
        print("writing %s as a CrystFEL geometry file" % o.geomfile, file=out)
        crystfel_geom.write_geom(
            o.geomfile, model, adu_per_photon=adu,
            max_adu=65535 if kind in ("int", "noise") else None,
            data_file=os.path.basename(o.nexusfile) if o.nexusfile else None)
    if o.pngfile:
        from .io import png
        top = png.write_preview_png(o.pngfile, res.float_image, model.beam_centre_px,
                                    o.png_scale, _rendered_pixels(p))
        print("writing %s as an 8-bit PNG preview (white = %g photons)" % (o.pngfile, top),
              file=out)


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    if "numpy" not in sys.modules:
        # nbsim does no linear algebra; an idle BLAS thread pool only competes with
        # the rendering threads for the cores
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # no user code shares this process: Numba need not load SciPy (see nbsim._jit)
    os.environ.setdefault("NBSIM_HIDE_SCIPY", "1")
    try:
        return run(args)
    except NbsimError as exc:
        sys.stdout.flush()
        print("nanoBragg: error: %s" % exc, file=sys.stderr)
        return exc.exit_code if exc.exit_code else 2
    except KeyboardInterrupt:
        print("nanoBragg: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        sys.stdout.flush()
        print("nanoBragg: error: not enough memory for this job (smaller -detpixels, "
              "-oversample or step counts?)", file=sys.stderr)
        return 12
    except BrokenPipeError:   # e.g. "nanoBragg -h | head": not an error worth a traceback
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def console_main():
    """Entry point of the installed commands: :func:`main`, then a quick exit.

    Every file nbsim writes is complete and closed when ``main`` returns. Tearing
    the interpreter down afterwards (numpy, Numba, the OpenMP thread pool) adds
    about 30 ms to every run, so the process ends as soon as the standard streams
    are flushed. Code that calls ``main`` itself is not affected.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: nothing more can be said
            pass
    os._exit(status if isinstance(status, int) else 1)
