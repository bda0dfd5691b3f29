"""The packed parameter layout shared by the Numba and C engines.

Integers travel in one int64 array and reals in one float64 array, indexed by the
constants below; ``csrc/nbsim_kernel.h`` mirrors these numbers (a test checks).

ROW_START/ROW_STOP select the slow rows [start, stop) an engine call renders; the
per-row outputs (image, omega_rows, probe_i, probe_d) then hold only those rows, the
first of them at index 0. A frame rendered in row blocks of any sizes has the same
bits as one rendered whole (see nbsim.rows).
"""
import numpy as np

SHAPE_SQUARE, SHAPE_ROUND, SHAPE_GAUSS, SHAPE_TOPHAT = 0, 1, 2, 3

_INTS = ("FPIXELS SPIXELS ROI_XMIN ROI_XMAX ROI_YMIN ROI_YMAX OVERSAMPLE THICKSTEPS "
         "HAS_MASK CURVED POINT_PIXEL OS_THICK OS_POLAR OS_OMEGA NOPOLAR SHAPE INTERPOLATE "
         "HKLS H_MIN H_MAX K_MIN K_MAX L_MIN L_MAX H_RANGE K_RANGE L_RANGE FIRST_PIXEL "
         "TRIG_PIXEL TRIG_ORD PROBE FAST ROW_START ROW_STOP").split()
_REALS = ("PIXEL_SIZE SUBPIXEL_SIZE THICKSTEP THICK MU DISTANCE CLOSE_DISTANCE POLARIZATION "
          "DMIN NA NB NC FUDGE DEFAULT_F WATER_SIZE I_BG R_E_SQR FLUENCE STEPS").split()

for _i, _n in enumerate(_INTS):
    globals()["I_" + _n] = _i
for _i, _n in enumerate(_REALS):
    globals()["D_" + _n] = _i
N_INTS = len(_INTS)
N_REALS = len(_REALS)
INT_NAMES = tuple(_INTS)
REAL_NAMES = tuple(_REALS)
NO_PIXEL = np.iinfo(np.int64).max   # "no such pixel" for FIRST_PIXEL / TRIG_PIXEL


def pack(ints: dict, reals: dict):
    """The packed arrays; without ROW_START/ROW_STOP every row is rendered."""
    ints = dict(ints)
    ints.setdefault("ROW_START", 0)
    ints.setdefault("ROW_STOP", ints.get("SPIXELS", 0))
    ip = np.zeros(N_INTS, dtype=np.int64)
    dp = np.zeros(N_REALS, dtype=np.float64)
    for k, v in ints.items():
        ip[INT_NAMES.index(k)] = int(v)
    for k, v in reals.items():
        dp[REAL_NAMES.index(k)] = float(v)
    return ip, dp


def row_range(ip):
    """(start, stop) of the rows ``ip`` asks for; ValueError unless
    0 <= start <= stop <= SPIXELS (an engine would write outside its arrays)."""
    start, stop, spixels = int(ip[I_ROW_START]), int(ip[I_ROW_STOP]), int(ip[I_SPIXELS])
    if not 0 <= start <= stop <= spixels:
        raise ValueError("ip: rows [%d, %d) are not within the detector's %d rows"
                         % (start, stop, spixels))
    return start, stop
