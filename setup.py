"""Install nbsim. ``pip install .`` also builds the C engine when a compiler is present."""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))
cffi_modules = []
if os.path.exists(os.path.join(here, "csrc", "build_ffi.py")) and \
        not os.environ.get("NBSIM_NO_C_ENGINE"):
    cffi_modules = ["csrc/build_ffi.py:ffi"]

setup(
    name="nbsim",
    version="0.1.0",
    description="Bit-identical, faster successor to the nanoBragg.c diffraction simulator",
    long_description=open(os.path.join(here, "README.md")).read() if os.path.exists(
        os.path.join(here, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["nbsim", "nbsim.*"]),
    # the packages' root named explicitly: `pip install -e .` then puts one path in a
    # .pth file instead of an import finder that costs every command ~15 ms at start-up
    package_dir={"": "."},
    python_requires=">=3.9",
    # h5py (+ hdf5plugin's Bitshuffle/LZ4; gzip without it, several times slower):
    # -nexusfile; fabio: -cbffile; Pillow: the lettering of nb-compare's figures
    install_requires=["numpy", "numba", "cffi>=1.15", "tifffile", "h5py>=3.0",
                      "hdf5plugin>=4.0", "fabio>=0.14", "pillow>=10.1",
                      'tomli; python_version<"3.11"'],
    setup_requires=["cffi>=1.15"] if cffi_modules else [],
    cffi_modules=cffi_modules,
    # test: the field's own readers the output tests use (README's test command and
    # .ci/run install the same)
    extras_require={"test": ["pytest", "nxmx>=0.0.5", "cfelpyutils>=2.0"],
                    "mpi": ["mpi4py"], "examples": ["matplotlib"]},
    entry_points={"console_scripts": [
        "nanoBragg = nbsim.cli:console_main",
        "nbsim = nbsim.cli:console_main",
        "nb-compare = nbsim.compare:main",
        "nbsim-batch = nbsim.batch:main",
    ]},
)
