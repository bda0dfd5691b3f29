"""Run the reference binary (NB_C_BIN) and nbsim on the same arguments, side by side.

Shared by the tests that compare against a user's build of nanoBragg.c; they skip
themselves when NB_C_BIN is not set.
"""
import filecmp
import os
import subprocess
import sys

import golden_cases as gc

REF = os.environ.get("NB_C_BIN")
ROOT = os.path.dirname(gc.HERE)
SKIP_REASON = ("NB_C_BIN is not set: point it at your own nanoBragg binary to compare "
               "with the reference")


def run_both(tmp_path, args, nbsim_extra=(), timeout=600):
    """The reference (one thread) and nbsim on ``args``, each in its own empty folder;
    returns (reference process, nbsim process, reference folder, nbsim folder)."""
    ref_dir, nb_dir = tmp_path / "ref", tmp_path / "nb"
    ref_dir.mkdir()
    nb_dir.mkdir()
    ref = subprocess.run([REF] + list(args), cwd=ref_dir, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=timeout,
                         errors="replace")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = subprocess.run([sys.executable, "-m", "nbsim"] + list(args) + list(nbsim_extra),
                        cwd=nb_dir, capture_output=True, text=True, env=env, timeout=timeout,
                        errors="replace")
    return ref, nb, ref_dir, nb_dir


def differing_files(ref_dir, nb_dir):
    """Names of files that differ or exist on one side only (empty: identical sets)."""
    ref_names, nb_names = set(os.listdir(ref_dir)), set(os.listdir(nb_dir))
    out = sorted(ref_names ^ nb_names)
    for name in sorted(ref_names & nb_names):
        if not filecmp.cmp(ref_dir / name, nb_dir / name, shallow=False):
            out.append(name)
    return out
