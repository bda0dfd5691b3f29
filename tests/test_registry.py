"""nbsim.engines.registry: what "auto" will run is known before anything renders."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_fresh_process_knows_its_engine_before_rendering():
    code = (
        "import nbsim\n"
        "from nbsim import engines\n"
        "sim = nbsim.Simulation(cell=(50, 50, 50, 90, 90, 90), default_F=1, detpixels=16,"
        " seed=1)\n"
        "before = engines.active()\n"
        "planned = engines.active(sim)\n"
        "resolved = engines.resolve(plan=sim.plan())\n"
        "ran = sim.run().engine\n"
        "print(before, planned, resolved, ran, engines.active())\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NBSIM_ENGINE", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    before, planned, resolved, ran, after = proc.stdout.split()
    assert before == "None"                      # nothing has rendered yet
    assert planned == resolved == ran == after   # and the answer before was the truth
