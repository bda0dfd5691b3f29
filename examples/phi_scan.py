"""A rotation series: one frame per phi, as a detector would record it.

Frames share the setup, the structure-factor table and the compiled kernels; each
frame is bit for bit the image a single render of that phi gives.
"""
# %%
import numpy as np

import nbsim

sim = nbsim.Simulation(
    cell=(60, 70, 80, 90, 95, 90), misset_deg=(5, 15, 25), default_F=100, N_cells=8,
    wavelength_A=1.2, distance_mm=90, detpixels=128,
    osc_deg=1.0, phisteps=4,               # each frame integrates 1 degree in 4 steps
    seed=7)

# %% One frame per degree; scan() yields a Result per value
starts = np.arange(0.0, 5.0, 1.0)
total = np.zeros((128, 128))
for phi, frame in zip(starts, sim.scan(phi_deg=starts)):
    lit = int((frame.float_image > 0.5).sum())
    print("phi %4.1f..%4.1f deg: max %8.3g photons, %5d pixels above 0.5" % (
        phi, phi + 1.0, frame.stats.max_I, lit))
    total += frame.float_image

# %% The sum over 5 degrees, and the frames' noise seeds (the same unless scanned)
print("sum over the scan: %.4g photons" % total.sum())
print("noise seed of every frame:", sim.seed)
frames = list(sim.scan(phi_deg=[0.0, 0.0], seed=[1, 2]))    # several keywords scan together
print("two noise draws differ:", not np.array_equal(frames[0].noise_image, frames[1].noise_image))

# %% Look (if matplotlib is installed)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots()
    ax.imshow(np.log1p(total), cmap="magma")
    ax.set_title("phi 0-5 degrees, log(1 + photons)")
    fig.savefig("phi_scan.png", dpi=80)
    print("wrote phi_scan.png")
