"""A slow, obvious second oracle: the basic nanoBragg physics in a few lines of numpy.

Cubic cell, no misset, MOSFLM detector, one source, no mosaic, one φ step, one
sub-pixel, square crystal, one structure factor, unpolarized beam. Written from the
physics, not from nbsim's code, so it catches a shared misunderstanding that the
golden corpus (one program's output) would not.
"""
import numpy as np

R_E_SQR = 7.94079248018965e-30      # Thomson cross section, m^2
DEFAULT_FLUENCE = 125932015286227086360700780544.0


def naive_image(cell_A, N, F, lambda_A, distance_mm, pixels, pixel_mm):
    px = pixel_mm * 1e-3
    dist = distance_mm * 1e-3
    lam = lambda_A * 1e-10
    # MOSFLM: beam along +x, fast axis +z, slow axis -y; the direct beam hits the
    # middle of the detector, offset by half a pixel from the centre of the array
    centre = pixels * px / 2.0 + px
    s, f = np.meshgrid(np.arange(pixels), np.arange(pixels), indexing="ij")
    fdet = (f + 0.5) * px - centre
    sdet = (s + 0.5) * px - centre
    pos = np.stack([np.full(fdet.shape, dist), sdet, fdet])      # x, y, z (sdet axis is -y)
    pos[1] = -pos[1]
    r = np.sqrt((pos ** 2).sum(axis=0))
    diffracted = pos / r
    q = (diffracted - np.array([1.0, 0.0, 0.0])[:, None, None]) / lam
    hkl = q * cell_A * 1e-10                                     # a, b, c along x, y, z
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.sin(np.pi * N * hkl) / np.sin(np.pi * hkl)
    g = np.where(hkl == 0.0, N, g)
    lattice = g.prod(axis=0)
    omega = px * px / r ** 2 * (dist / r)
    cos2t = diffracted[0]
    polar = 0.5 * (1.0 + cos2t ** 2)
    return R_E_SQR * DEFAULT_FLUENCE * F ** 2 * lattice ** 2 * omega * polar
