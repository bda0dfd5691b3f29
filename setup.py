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
    python_requires=">=3.9",
    install_requires=["numpy", "numba", "cffi>=1.15", "tifffile"],
    setup_requires=["cffi>=1.15"] if cffi_modules else [],
    cffi_modules=cffi_modules,
    extras_require={"test": ["pytest"], "mpi": ["mpi4py"], "examples": ["matplotlib"]},
    entry_points={"console_scripts": [
        "nanoBragg = nbsim.cli:console_main",
        "nbsim = nbsim.cli:console_main",
        "nb-compare = nbsim.compare:main",
        "nbsim-batch = nbsim.batch:main",
    ]},
)
