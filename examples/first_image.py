"""A first diffraction image from Python: build, check, render, look.

Runs as a script (``python examples/first_image.py``) or cell by cell in Jupyter
(the ``# %%`` markers). Writes first_image.png when matplotlib is installed.
"""
# %% Build: keywords in everyday units, checked now (a typo or a bad value is one
# NbsimError naming the keyword and its unit)
import numpy as np

import nbsim

sim = nbsim.Simulation(
    cell=(79.1, 79.1, 38.0, 90, 90, 90),   # a, b, c in Angstrom; alpha, beta, gamma in degrees
    misset_deg=(10, 20, 30),               # crystal orientation
    default_F=100,                         # electrons, for every reflection
    N_cells=(10, 10, 20),                  # unit cells along a, b, c
    mosaic_spread_deg=0.05, mosaic_domains=4,
    wavelength_A=1.0,
    distance_mm=80, pixel_size_mm=0.1, detpixels=(192, 256),   # (slow, fast)
    seed=1)
print("engine for this job:", sim.which_engine())
print("same image from the command line: nanoBragg", " ".join(sim.to_args()))

# %% Render: arrays in memory, no files written
result = sim.run()
image = result.float_image                   # (slow, fast) float32, photons/pixel
slow, fast = np.unravel_index(image.argmax(), image.shape)
print("shape", image.shape, "max %.3g photons at (%d, %d)" % (image.max(), slow, fast))
print("noise image: %d photons counted" % result.photons)
det = result.detector
print("beam centre (slow, fast) = (%.2f, %.2f) mm" % det.beam_center_mm)

# %% Look (if matplotlib is installed)
import sys                                       # noqa: E402

in_notebook = "ipykernel" in sys.modules
try:
    import matplotlib
    if not in_notebook:
        matplotlib.use("Agg")                    # a script: draw into a file
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is None:
    print("install matplotlib to see the image")
else:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    shown = ax.imshow(result.noise_image, cmap="gray_r",
                      vmax=np.percentile(result.noise_image, 99.9))
    ax.plot(det.beam_center_mm[1] / det.pixel_size_mm - 0.5,
            det.beam_center_mm[0] / det.pixel_size_mm - 0.5, "r+")
    ax.set_xlabel("fast (pixels)")
    ax.set_ylabel("slow (pixels)")
    fig.colorbar(shown, label="ADU")
    fig.savefig("first_image.png", dpi=80)
    print("wrote first_image.png")
    if in_notebook:
        plt.show()
