"""cffi builder of ``nbsim._nbsim_c``, nbsim's C engine and sequential helpers.

``setup.py`` uses it as ``cffi_modules=["csrc/build_ffi.py:ffi"]``; for development,
``python csrc/build_ffi.py`` compiles the extension and puts it into ``nbsim/`` of
this source tree.

Compiler flags matter for bit-identical images: no ``-ffast-math``, no
``-march=native``, and ``-ffp-contract=off`` so that the compiler never fuses a
multiply and an add (the Numba kernel does not either).  -fast's batch
evaluation (``csrc/nbsim_fast.c``) is compiled for several instruction sets
(``csrc/nbsim_fast_simd.h``) and picked at run time, so the build stays portable
and still uses AVX2/AVX-512 where present.  OpenMP is used when the compiler supports it (checked by compiling a small test program); otherwise the
engine is built serial.  ``NBSIM_NO_OPENMP=1`` forces a serial build.
"""
import os
import re
import shutil
import sys
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOURCES = ("nbsim_kernel.c", "nbsim_fast.c", "nbsim_aux.c")
HEADERS = ("nbsim_kernel.h", "nbsim_aux.h", "nbsim_fast.h", "nbsim_fast_simd.h")


def cdef_from_headers(names=("nbsim_kernel.h", "nbsim_aux.h")):
    """The functions cffi exposes: every nbsim_* prototype in the public headers.

    Read from the headers (comments and preprocessor lines dropped) so that the
    declarations are written once, where the C code includes them."""
    found = []
    for name in names:
        with open(os.path.join(HERE, name)) as fh:
            text = re.sub(r"/\*.*?\*/", "", fh.read(), flags=re.S)
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        found += re.findall(r"^[A-Za-z_][\w \t*]*?\bnbsim_\w+\s*\([^;{}]*\)\s*;", text,
                            flags=re.M)
    if not found:
        raise RuntimeError("no nbsim_* prototypes found in %s" % ", ".join(names))
    return "\n".join(found) + "\n"


# Flags that keep the arithmetic exactly as written (GCC and Clang spelling).
PARITY_FLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math"]
OPENMP_FLAG = "-fopenmp"

_PROBE = r"""
#include <omp.h>
int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
"""


def _compiler():
    import setuptools  # noqa: F401  (provides distutils on Python >= 3.12)
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler
    cc = new_compiler()
    customize_compiler(cc)
    return cc


def openmp_available():
    """True if the C compiler builds and links a small OpenMP program."""
    if os.environ.get("NBSIM_NO_OPENMP"):
        return False
    old = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="nbsim_omp_")
    try:
        cc = _compiler()
        if getattr(cc, "compiler_type", "unix") == "msvc":
            return False
        os.chdir(tmp)
        with open("omp_probe.c", "w") as fh:
            fh.write(_PROBE)
        objs = cc.compile(["omp_probe.c"], extra_postargs=[OPENMP_FLAG])
        cc.link_executable(objs, "omp_probe", extra_postargs=[OPENMP_FLAG])
        return True
    except Exception:  # any compiler or linker failure: build serial
        return False
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


def compile_flags():
    """(extra_compile_args, extra_link_args) for this compiler."""
    try:
        msvc = getattr(_compiler(), "compiler_type", "unix") == "msvc"
    except Exception:
        msvc = False
    if msvc:  # no OpenMP there; /fp:precise forbids contraction and reassociation
        return ["/O2", "/fp:precise"], []
    if openmp_available():
        return PARITY_FLAGS + [OPENMP_FLAG], [OPENMP_FLAG]
    return list(PARITY_FLAGS), []


def _source_paths(absolute):
    paths = [os.path.join(HERE, s) for s in SOURCES]
    if absolute:
        return paths
    # setuptools wants paths relative to setup.py's directory, the working directory
    # when it imports this module
    return [os.path.relpath(p) for p in paths]


def make_ffi(absolute=False):
    compile_args, link_args = compile_flags()
    builder = FFI()
    builder.cdef(cdef_from_headers())
    builder.set_source(
        "nbsim._nbsim_c",
        '#include "nbsim_kernel.h"\n#include "nbsim_aux.h"\n',
        sources=_source_paths(absolute),
        include_dirs=[HERE],
        depends=[os.path.join(HERE, h) for h in HEADERS],
        libraries=[] if os.name == "nt" else ["m"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return builder


ffi = make_ffi(absolute=False)


def build_in_place(verbose=False):
    """Compile the extension and copy it into nbsim/; returns its path."""
    builder = make_ffi(absolute=True)
    tmp = os.path.join(ROOT, "build", "cffi")
    os.makedirs(tmp, exist_ok=True)
    built = builder.compile(tmpdir=tmp, verbose=verbose)
    dest = os.path.join(ROOT, "nbsim", os.path.basename(built))
    shutil.copyfile(built, dest + ".tmp")
    os.replace(dest + ".tmp", dest)   # never leave a half-written module behind
    # A copy under another suffix (pip builds _nbsim_c.abi3.so, this one is named for
    # the interpreter) would be older code that Python may prefer: remove it.
    folder = os.path.dirname(dest)
    for name in os.listdir(folder):
        if name.startswith("_nbsim_c.") and name != os.path.basename(dest) \
                and name.endswith((".so", ".pyd")):
            os.unlink(os.path.join(folder, name))
    return dest


if __name__ == "__main__":
    path = build_in_place(verbose="-v" in sys.argv[1:] or "--verbose" in sys.argv[1:])
    print("built %s" % os.path.relpath(path))
