/*
 * nbsim C helpers for the sequential parts of a run: image statistics, the 16-bit
 * and 8-bit images, and the Poisson noise image with its random-number generator.
 *
 * Each function mirrors a Numba function of nbsim (named below) operation for
 * operation, so both give the same bits.  Images are C-ordered
 * [spixels][fpixels]; roi is {xmin, xmax, ymin, ymax}, inclusive.
 *
 * The generator state is the arrays of nbsim.rng.RandomState, passed by pointer:
 *   iy[1], iv[32] (int64), poisson[4] (float; slots POIS_SQ, POIS_LOGMEAN,
 *   POIS_G, POIS_LASTMEAN), gauss_iset[1] (int64), gauss_gset[1] (float);
 * and the seed idum[1] (int64).  All are updated in place.
 */
#ifndef NBSIM_AUX_H
#define NBSIM_AUX_H

#include <stdint.h>

enum nbsim_pois_slot {
    NBSIM_POIS_SQ = 0,
    NBSIM_POIS_LOGMEAN = 1,
    NBSIM_POIS_G = 2,
    NBSIM_POIS_LASTMEAN = 3
};

/* nbsim.stats._accumulate */
void nbsim_accumulate(const float *img, int64_t spixels, int64_t fpixels,
                      const int64_t *roi, const uint16_t *mask, int has_mask,
                      double *max_I, int64_t *max_f, int64_t *max_s,
                      double *total, double *sumsqr, int64_t *n);

/* nbsim.stats._deviation */
void nbsim_deviation(const float *img, int64_t spixels, int64_t fpixels,
                     const int64_t *roi, double avg, double *sumsqr, int64_t *n);

/* nbsim.stats._to_uint16 */
void nbsim_to_uint16(const float *img, int64_t spixels, int64_t fpixels,
                     const int64_t *roi, double scale, double offset, uint16_t *out);

/* nbsim.stats._to_uint8 */
void nbsim_to_uint8(const float *img, int64_t spixels, int64_t fpixels,
                    const int64_t *roi, double scale, uint8_t *out);

/* nbsim.rng.ran1 */
float nbsim_ran1(int64_t *idum, int64_t *iy, int64_t *iv);

/* nbsim.noise.gammln */
float nbsim_gammln(float xx);

/* nbsim.noise.gaussdev */
float nbsim_gaussdev(int64_t *idum, int64_t *iy, int64_t *iv,
                     int64_t *gauss_iset, float *gauss_gset);

/* nbsim.noise.poidev */
float nbsim_poidev(float xm, int64_t *idum, int64_t *iy, int64_t *iv, float *poisson,
                   int64_t *gauss_iset, float *gauss_gset);

/* nbsim.noise._noise_loop: fills out (pixels outside the roi are not touched and
 * draw nothing); returns the sum of the deviates and the number of clipped pixels. */
void nbsim_noise_loop(const float *image, int64_t spixels, int64_t fpixels,
                      int64_t xmin, int64_t xmax, int64_t ymin, int64_t ymax,
                      double adc_offset, int64_t *idum, int64_t *iy, int64_t *iv,
                      float *poisson, int64_t *gauss_iset, float *gauss_gset,
                      uint16_t *out, double *photons, int64_t *overloads);

#endif /* NBSIM_AUX_H */
