"""Load the vendored nanoBragg.c runs and compare an nbsim run against one.

Parity, as tests/golden/README.md defines it: every output file identical byte for
byte, the same exit status, and the same statistics lines on stdout; and beyond it,
the whole of stdout line for line (see :func:`stdout_lines` for what may differ).
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
CASES_DIR = os.path.join(GOLDEN, "cases")
INPUTS = os.path.join(GOLDEN, "inputs")

STAT_PATTERNS = (r"^max_I = ", r"^mean= ", r"^intfile_scale = ", r"^pgm_scale = ",
                 r"^\d+ photons on noise image")


def case_names():
    return sorted(os.listdir(CASES_DIR))


def load_case(name):
    with open(os.path.join(CASES_DIR, name, "case.json")) as fh:
        case = json.load(fh)
    case["name"] = name
    case["args"] = [a.replace("{in}", INPUTS) for a in case["args"]]
    with open(os.path.join(CASES_DIR, name, "stdout.txt")) as fh:
        case["stdout"] = fh.read()
    return case


def golden_file(name, fname):
    with gzip.open(os.path.join(CASES_DIR, name, fname + ".gz"), "rb") as fh:
        return fh.read()


def stat_lines(text):
    return [line for line in text.splitlines()
            if any(re.match(p, line) for p in STAT_PATTERNS)]


# what may differ in stdout, on purpose: each program's banner line, nbsim's last line
# naming its engine, buffer addresses (printed with %p), and the usage text itself
_REF_BANNER = "nanoBragg nanocrystal diffraction simulator"
ADDRESS = re.compile(r"= 0x[0-9a-f]+$", re.M)


def stdout_lines(text, nbsim):
    """stdout as comparable lines: banners as BANNER, addresses as ADDRESS, nbsim's engine
    line dropped, and everything from the usage text on cut (a missing input prints the
    reference's usage there and nbsim's own; the text before it must agree)."""
    out = []
    for line in text.replace("{in}", INPUTS).split("\n"):
        if nbsim and line.startswith("nbsim: rendered by the "):
            continue
        if line.startswith(_REF_BANNER) or (line.startswith("nbsim ")
                                           and "nanoBragg-compatible" in line):
            line = "BANNER"
        if "usage: nanoBragg" in line:
            out.append(line[:line.index("usage: nanoBragg")] + "USAGE")
            break
        out.append(ADDRESS.sub("= ADDRESS", line))
    return out


def stdout_problem(case, stdout):
    """None if stdout is line for line the reference's (see :func:`stdout_lines`)."""
    mine, ref = stdout_lines(stdout, True), stdout_lines(case["stdout"], False)
    if mine == ref:
        return None
    at = next((i for i, (a, b) in enumerate(zip(mine, ref)) if a != b), min(len(mine), len(ref)))
    return ("stdout differs at line %d:\n  nbsim: %r\n  ref:   %r"
            % (at + 1, mine[at] if at < len(mine) else "<end>", ref[at] if at < len(ref) else "<end>"))


def args_for_mode(case):
    """Arguments nbsim needs to reproduce this case (c_parity cases need the switch)."""
    args = list(case["args"])
    if case["flags"].get("c_parity"):
        args.append("-c_parity")
    return args


def prepare_workdir(case, workdir):
    pre = case["flags"].get("pre_fdump")
    if pre:
        with open(os.path.join(workdir, "Fdump.bin"), "wb") as fh:
            fh.write(golden_file(pre, "Fdump.bin"))


def compare(case, workdir, exit_code, stdout):
    """A list of human-readable differences (empty means parity)."""
    problems = []
    if exit_code != case["exit_code"]:
        problems.append("exit status %s, reference %s" % (exit_code, case["exit_code"]))
    mine = stat_lines(stdout)
    ref = stat_lines(case["stdout"])
    if mine != ref:
        problems.append("statistics lines differ:\n  nbsim: %r\n  ref:   %r" % (mine, ref))
    problem = stdout_problem(case, stdout)
    if problem:
        problems.append(problem)
    for fname in case["files"]:
        path = os.path.join(workdir, fname)
        if not os.path.exists(path):
            problems.append("%s not written" % fname)
            continue
        with open(path, "rb") as fh:
            data = fh.read()
        want = golden_file(case["name"], fname)
        if data != want:
            first = next((i for i, (a, b) in enumerate(zip(data, want)) if a != b),
                         min(len(data), len(want)))
            problems.append("%s differs (%d vs %d bytes, first difference at byte %d)"
                            % (fname, len(data), len(want), first))
    written = set(os.listdir(workdir)) - {"Fdump.bin"} if case["flags"].get("pre_fdump") \
        else set(os.listdir(workdir))
    extra = written - set(case["files"])
    if extra:
        problems.append("unexpected files written: %s" % sorted(extra))
    return problems


def run_in_process(case, workdir, extra_args=()):
    """Run nbsim's CLI in this process, in ``workdir``; returns (exit, stdout)."""
    import io
    from contextlib import redirect_stdout

    from nbsim.cli import main
    prepare_workdir(case, workdir)
    buf = io.StringIO()
    old = os.getcwd()
    os.chdir(workdir)
    try:
        with redirect_stdout(buf):
            code = main(args_for_mode(case) + list(extra_args))
    finally:
        os.chdir(old)
    return code, buf.getvalue()


def run_command(case, workdir, extra_args=(), env=None, command=None):
    """Run the installed command as a separate process; returns (exit, stdout)."""
    prepare_workdir(case, workdir)
    cmd = command or [shutil.which("nanoBragg") or "nanoBragg"]
    proc = subprocess.run(cmd + args_for_mode(case) + list(extra_args), cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=600)
    if proc.returncode != 0 and proc.stderr:
        # keep the command's own error visible in a failure report
        print(proc.stderr[-2000:], file=sys.stderr)
    return proc.returncode, proc.stdout


if __name__ == "__main__":  # a quick manual sweep: python tests/golden_cases.py [names]
    import tempfile
    sys.path.insert(0, os.path.dirname(HERE))
    names = sys.argv[1:] or case_names()
    bad = 0
    for n in names:
        case = load_case(n)
        with tempfile.TemporaryDirectory() as d:
            try:
                code, out = run_in_process(case, d)
                probs = compare(case, d, code, out)
            except Exception as exc:  # report and go on
                probs = ["crashed: %r" % exc]
        print("%-34s %s" % (n, "ok" if not probs else "FAIL"))
        for p in probs:
            print("    " + p)
        bad += bool(probs)
    print("%d of %d differ" % (bad, len(names)))
