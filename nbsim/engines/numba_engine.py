"""Runs the Numba kernel with a given thread count."""
import numba

from . import numba_kernel
from . import params as P


def render(threads, ip, dp, vecs, sources, lat, lat_first, Fhkl, mask, out, omega_rows,
           probe_i, probe_d):
    # the kernel does not check its bounds: a row range the arrays do not hold is refused
    start, stop = P.row_range(ip)
    rows, fpixels = stop - start, int(ip[P.I_FPIXELS])
    # with PROBE 2 (-printout) probe_d holds one record per pixel, else one per row
    records = rows * fpixels if ip[P.I_PROBE] == 2 else rows
    for name, a, want in (("out", out, (rows, fpixels)), ("omega_rows", omega_rows, (rows,)),
                          ("probe_i", probe_i, (rows,)), ("probe_d", probe_d, (records,))):
        if a.shape[:len(want)] != want:
            raise ValueError("rows [%d, %d): %s must have shape %s..., got %s"
                             % (start, stop, name, want, a.shape))
    if ip[P.I_HAS_MASK] and mask.shape != (int(ip[P.I_SPIXELS]), fpixels):
        raise ValueError("mask: expected the whole detector, got shape %s" % (mask.shape,))
    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    # rows differ in cost (culled, masked or faint regions): hand them out a few at a
    # time instead of in one static block per thread
    old_chunk = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(2)
    try:
        numba_kernel.render(ip, dp, vecs, sources, lat, lat_first, Fhkl, mask, out, omega_rows,
                            probe_i, probe_d)
    finally:
        numba.set_parallel_chunksize(old_chunk)
        numba.set_num_threads(previous)
