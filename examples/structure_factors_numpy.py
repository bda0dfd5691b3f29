"""Structure factors and orientation from numpy arrays, no files.

F comes from a toy model (a Wilson-like fall-off with random phases' amplitudes),
the orientation as an A matrix (columns a*, b*, c* in 1/Angstrom).
"""
# %%
import numpy as np

import nbsim

rng = np.random.default_rng(0)
a, b, c = 50.0, 60.0, 70.0                       # orthorhombic cell, Angstrom
hkl = np.array(np.meshgrid(*[np.arange(-12, 13)] * 3, indexing="ij")).reshape(3, -1).T
d_star_sq = (hkl[:, 0] / a) ** 2 + (hkl[:, 1] / b) ** 2 + (hkl[:, 2] / c) ** 2
F = 200.0 * np.exp(-2.0 * d_star_sq) * rng.rayleigh(1.0, len(hkl))    # electrons
print("%d reflections, F from %.3g to %.3g" % (len(F), F.min(), F.max()))

# %% Orientation: rotate the reciprocal basis B (columns a*, b*, c*) by a rotation U
B = np.diag([1 / a, 1 / b, 1 / c])
angle = np.radians(20.0)
U = np.array([[np.cos(angle), -np.sin(angle), 0.0],
              [np.sin(angle), np.cos(angle), 0.0],
              [0.0, 0.0, 1.0]])
A = U @ B

# %% Render with the arrays
sim = nbsim.Simulation(A_matrix=A, Fhkl=(hkl, F), N_cells=6, wavelength_A=1.0,
                       distance_mm=100, detpixels=128, seed=3)
result = sim.run()
print("max %.3g photons/pixel, %d pixels lit" % (result.stats.max_I,
                                                 (result.float_image > 0.1).sum()))

# %% The same reflections as a dict give the same image, bit for bit
as_dict = {tuple(idx): f for idx, f in zip(hkl.tolist(), F.tolist())}
again = nbsim.simulate(sim, Fhkl=as_dict)
print("dict and arrays agree:", np.array_equal(again.float_image, result.float_image))

# %% For the command line, write the arrays as files next to the words
import tempfile                                  # noqa: E402

folder = tempfile.mkdtemp()
print("nanoBragg", " ".join(sim.to_args(inputs_dir=folder)))
