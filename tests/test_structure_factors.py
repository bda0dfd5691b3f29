"""In-memory structure factors give the table an -hkl file with the same records gives."""
import numpy as np
import pytest

import golden_cases as gc
from nbsim import NbsimError
from nbsim.io.hkl import read_hkl
from nbsim.structure_factors import StructureFactors


def test_records_build_the_files_table_including_duplicates_and_default_F(tmp_path):
    rng = np.random.default_rng(5)
    hkl = rng.integers(-3, 4, size=(60, 3))          # with repeats: later records win
    F = rng.uniform(0, 50, size=60)
    sf = StructureFactors(hkl, F)
    path = tmp_path / "x.hkl"
    sf.write_hkl(path)
    for default_F in (0.0, 7.5):
        mine, theirs = sf.table(default_F), read_hkl(str(path), default_F)
        assert np.array_equal(mine.F.view(np.uint64), theirs.F.view(np.uint64))
        assert (mine.h_min, mine.h_max, mine.k_min, mine.k_max, mine.l_min, mine.l_max) == \
            (theirs.h_min, theirs.h_max, theirs.k_min, theirs.k_max, theirs.l_min, theirs.l_max)
        assert mine.hkls == theirs.hkls == 60


def test_a_golden_hkl_file_read_back_through_records():
    table = read_hkl(gc.INPUTS + "/cubic.hkl", 0.0)
    rows = [line.split() for line in open(gc.INPUTS + "/cubic.hkl") if line.strip()]
    sf = StructureFactors.coerce({(int(h), int(k), int(l)): float(f) for h, k, l, f in rows})
    assert np.array_equal(sf.table(0.0).F, table.F)


def test_coerce_forms_equality_and_read_only_arrays():
    d = {(1, 2, 3): 4.0, (-1, 0, 2): 2}
    a = StructureFactors.coerce(d)
    b = StructureFactors.coerce((np.array([[1, 2, 3], [-1, 0, 2]]), np.array([4.0, 2.0])))
    c = StructureFactors.coerce(([[1, 2, 3], [-1, 0, 2]], [4, 2]))
    assert a == b == c and hash(a) == hash(b) and len(a) == 2
    assert StructureFactors.coerce(a) is a
    assert a != StructureFactors.coerce({(1, 2, 3): 4.0})
    with pytest.raises(ValueError):
        a.F[0] = 1.0
    assert "2 reflections" in repr(a) and "h -1..1" in repr(a)


@pytest.mark.parametrize("value,says", [
    ({}, "no reflections"), ({(1, 2, 3.5): 1.0}, "(h, k, l) tuples of integers"),
    ({(1, 2, 3): "x"}, "must be a real number"), ({(True, 2, 3): 1.0}, "tuples of integers"),
    ((np.zeros((0, 3), dtype=int), np.zeros(0)), "no reflections"),
    ((np.array([[2**40, 0, 0]]), [1.0]), "out of range"),
    ((np.zeros((2, 3), dtype=complex), [1.0, 2.0]), "integers"),
    ((np.zeros((2, 3), dtype=int), [True, False]), "real numbers"),
    ("P1.hkl", "expected a dict"),
])
def test_bad_records_are_named(value, says):
    with pytest.raises(NbsimError, match="Fhkl") as info:
        StructureFactors.coerce(value)
    assert says in str(info.value)
