/*
 * nbsim C engine: the pixel loop as one flat entry point.
 *
 * The parameter layout (indices into the packed int64 and double arrays) is the
 * one defined in nbsim/engines/params.py; tests/test_c_engine.py parses this file
 * and checks every number below against that module.
 */
#ifndef NBSIM_KERNEL_H
#define NBSIM_KERNEL_H

#include <stdint.h>

/* Integer parameters: indices into ip[]. */
enum nbsim_int_index {
    NBSIM_I_FPIXELS        = 0,
    NBSIM_I_SPIXELS        = 1,
    NBSIM_I_ROI_XMIN       = 2,
    NBSIM_I_ROI_XMAX       = 3,
    NBSIM_I_ROI_YMIN       = 4,
    NBSIM_I_ROI_YMAX       = 5,
    NBSIM_I_OVERSAMPLE     = 6,
    NBSIM_I_THICKSTEPS     = 7,
    NBSIM_I_HAS_MASK       = 8,
    NBSIM_I_CURVED         = 9,
    NBSIM_I_POINT_PIXEL    = 10,
    NBSIM_I_OS_THICK       = 11,
    NBSIM_I_OS_POLAR       = 12,
    NBSIM_I_OS_OMEGA       = 13,
    NBSIM_I_NOPOLAR        = 14,
    NBSIM_I_SHAPE          = 15,
    NBSIM_I_INTERPOLATE    = 16,
    NBSIM_I_HKLS           = 17,
    NBSIM_I_H_MIN          = 18,
    NBSIM_I_H_MAX          = 19,
    NBSIM_I_K_MIN          = 20,
    NBSIM_I_K_MAX          = 21,
    NBSIM_I_L_MIN          = 22,
    NBSIM_I_L_MAX          = 23,
    NBSIM_I_H_RANGE        = 24,
    NBSIM_I_K_RANGE        = 25,
    NBSIM_I_L_RANGE        = 26,
    NBSIM_I_FIRST_PIXEL    = 27,
    NBSIM_I_TRIG_PIXEL     = 28,
    NBSIM_I_TRIG_ORD       = 29,
    NBSIM_I_PROBE          = 30,
    NBSIM_I_FAST           = 31,
    NBSIM_I_ROW_START      = 32,
    NBSIM_I_ROW_STOP       = 33,
    NBSIM_N_INTS           = 34
};

/* Real parameters: indices into dp[]. */
enum nbsim_real_index {
    NBSIM_D_PIXEL_SIZE     = 0,
    NBSIM_D_SUBPIXEL_SIZE  = 1,
    NBSIM_D_THICKSTEP      = 2,
    NBSIM_D_THICK          = 3,
    NBSIM_D_MU             = 4,
    NBSIM_D_DISTANCE       = 5,
    NBSIM_D_CLOSE_DISTANCE = 6,
    NBSIM_D_POLARIZATION   = 7,
    NBSIM_D_DMIN           = 8,
    NBSIM_D_NA             = 9,
    NBSIM_D_NB             = 10,
    NBSIM_D_NC             = 11,
    NBSIM_D_FUDGE          = 12,
    NBSIM_D_DEFAULT_F      = 13,
    NBSIM_D_WATER_SIZE     = 14,
    NBSIM_D_I_BG           = 15,
    NBSIM_D_R_E_SQR        = 16,
    NBSIM_D_FLUENCE        = 17,
    NBSIM_D_STEPS          = 18,
    NBSIM_N_REALS          = 19
};

/* Crystal shape codes (ip[NBSIM_I_SHAPE]). */
enum nbsim_shape {
    NBSIM_SHAPE_SQUARE = 0,
    NBSIM_SHAPE_ROUND  = 1,
    NBSIM_SHAPE_GAUSS  = 2,
    NBSIM_SHAPE_TOPHAT = 3
};

/* ip[FIRST_PIXEL] / ip[TRIG_PIXEL] value meaning "no such pixel". */
#define NBSIM_NO_PIXEL INT64_MAX

/* Rows of vecs[9][3]. */
enum nbsim_vec_row {
    NBSIM_V_FDET = 0, NBSIM_V_SDET = 1, NBSIM_V_ODET = 2, NBSIM_V_PIX0 = 3,
    NBSIM_V_BEAM = 4, NBSIM_V_POLAR_AXIS = 5, NBSIM_V_A_STAR = 6, NBSIM_V_B_STAR = 7,
    NBSIM_V_C_STAR = 8, NBSIM_N_VECS = 9
};

/*
 * Render the slow rows [ip[ROW_START], ip[ROW_STOP]) of the float image.
 *
 *   ip[NBSIM_N_INTS], dp[NBSIM_N_REALS]   packed parameters
 *   vecs[9][3]                            detector, beam and reciprocal-cell vectors
 *   sources[nsources][source_stride]      -incident direction (x, y, z), wavelength
 *   lat, lat_first[phisteps][domains][9]  rotated real-space cell (a, b, c), and the
 *                                         table seen by ip[FIRST_PIXEL]'s first phi loop
 *   Fhkl[fh][fk][fl]                      structure factors, offset by (h_min, k_min, l_min)
 *   mask[spixels][fpixels]                read only when ip[HAS_MASK] != 0
 *   out[rows][fpixels]                    float image rows, accumulated into (in/out)
 *   omega_rows[rows]                      solid-angle sum of each row (out)
 *   probe_i[rows][2], probe_d[rows][6]    with ip[PROBE] != 0, the first interpolation
 *                                         out of range in each row (out)
 *   nthreads                              OpenMP threads (<= 0: the runtime default)
 *
 * rows = ROW_STOP - ROW_START; row ROW_START is at index 0 of every output.
 * Rows are independent, so the image does not depend on the thread count or on
 * how a frame is split into row ranges.
 * ip[NBSIM_I_FAST] selects the -fast approximations, computed with the same
 * operations in the same order as the Numba kernel's (same bits).
 * Returns 0; -1 when a size argument or the row range is inconsistent, -3 when the -fast work space
 * cannot be allocated.  Nothing is written when the return value is not 0.
 */
int nbsim_render(const int64_t *ip, const double *dp, const double *vecs,
                 const double *sources, int64_t nsources, int64_t source_stride,
                 const double *lat, const double *lat_first,
                 int64_t phisteps, int64_t domains,
                 const double *Fhkl, int64_t fh, int64_t fk, int64_t fl,
                 const uint16_t *mask, float *out, double *omega_rows,
                 int64_t *probe_i, double *probe_d, int nthreads);

/* The layout this library was compiled with: NBSIM_N_INTS, NBSIM_N_REALS. */
void nbsim_layout(int64_t *n_ints, int64_t *n_reals);

/* The SIMD flavour -fast's batch evaluation uses here: "avx512", "avx2", "sse2",
 * "generic" or "scalar" (environment variable NBSIM_SIMD may ask for a narrower
 * one; all give the same bits). */
const char *nbsim_simd_flavour(void);

/* For tests: -fast's batch evaluation of n scattering vectors sc[n][3] over the
 * transposed lattice table tT[9][M] with the shape parameters of ip, dp, vecs (the
 * Numba engine's numba_kernel._fast_eval): h, k, l and F_latt go to out[4][n*M]; the
 * sum of F_latt**2 in its fixed order is returned.  flavour as NBSIM_SIMD (NULL:
 * the best); *used (if not NULL) gets the one used.  NaN when n or M is negative
 * or memory runs out. */
double nbsim_fast_eval(const int64_t *ip, const double *dp, const double *vecs,
                       const double *tT, int64_t M, const double *sc, int64_t n,
                       double *out, const char *flavour, const char **used);

/* 1 when compiled with OpenMP, else 0. */
int nbsim_have_openmp(void);

#endif /* NBSIM_KERNEL_H */
