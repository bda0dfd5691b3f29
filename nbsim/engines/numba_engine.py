"""Runs the Numba kernel with a given thread count."""
import numba

from . import numba_kernel


def render(threads, ip, dp, vecs, sources, lat, lat_first, Fhkl, mask, out, omega_rows,
           probe_i, probe_d):
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
