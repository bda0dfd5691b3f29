"""Command lines with every kind of detector placement, shared by the output tests.

Each case is (id, nanoBragg arguments); all are tiny (no rendering is needed for the
geometry, and the tests that render keep detectors small).
"""
from nbsim.cli import config_from_args
from nbsim.experiment import model_from_plan
from nbsim.plan import make_plan

BASE = "-cell 70 80 90 90 90 90 -default_F 100 -lambda 1.3 -pixel 0.172 -seed 1 -noprogress"
ROT = "-detector_rotx 2.5 -detector_roty -3 -detector_rotz 4"

CASES = [
    ("mosflm", "-detpixels_f 48 -detpixels_s 40 -distance 120 -Xbeam 3.1 -Ybeam 4.2 "
               "-phi 10 -osc 0.5"),
    ("mosflm_rot_2theta", "-detpixels_f 48 -detpixels_s 40 -distance 120 -Xbeam 3.1 -Ybeam 4.2 "
                          + ROT + " -twotheta 15 -phi -30 -osc 1"),
    ("xds", "-xds -detpixels_f 40 -detpixels_s 48 -distance 90 -ORGX 20.3 -ORGY 17.8 "
            + ROT + " -phi 5 -osc 0.25"),
    ("xds_2theta", "-xds -detpixels 40 -distance 90 -ORGX 20.3 -ORGY 17.8 -twotheta 20 "
                   "-phi 5 -osc 0.25"),
    ("dials", "-dials -detpixels_f 44 -detpixels_s 36 -distance 150 -ORGX 10 -ORGY 30 "
              + ROT + " -twotheta -12 -phi 90 -osc 0.1"),
    ("custom", "-detpixels_f 40 -detpixels_s 32 -distance 110 -fdet_vector 0.1 0 1 "
               "-sdet_vector 0 -1 0.05 -odet_vector 1 0 -0.1 -beam_vector 1 0.02 0 "
               "-polar_vector 0 0 1 -spindle_axis 0 0.3 1 -Xbeam 2 -Ybeam 3 -twotheta 8 "
               "-phi 3 -osc 2"),
    ("custom_pix0", "-detpixels 40 -pix0_vector 0.11 0.004 -0.003 -fdet_vector 0 0 1 "
                    "-sdet_vector 0 -1 0 -odet_vector 1 0 0 -phi 1 -osc 0.3"),
]
IDS = [c[0] for c in CASES]


def plan_for(extra):
    cfg, _ = config_from_args((BASE + " " + extra).split(), warn=lambda m: None)
    return make_plan(cfg)


def model_for(extra):
    plan = plan_for(extra)
    return plan, model_from_plan(plan)
