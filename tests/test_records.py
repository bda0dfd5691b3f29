"""nbsim.records.record behaves as @dataclass (its methods are shared, not compiled per
class): compared here with real dataclasses of the same fields."""
import dataclasses
from dataclasses import dataclass, field

import pytest

from nbsim.records import record


def _pair(frozen):
    def body(decorate):
        @decorate
        class Thing:
            a: int
            b: list = field(default_factory=list)
            c: str = "x"
            hidden: object = field(default=None, repr=False)
            ignored: int = field(default=0, compare=False)
        return Thing
    return (body(record(frozen=True) if frozen else record),
            body(dataclass(frozen=True) if frozen else dataclass))


@pytest.mark.parametrize("frozen", [False, True])
def test_record_equals_dataclass(frozen):
    R, D = _pair(frozen)
    for args, kw in [((1,), {}), ((1, [2], "y"), {}), ((), {"a": 3, "c": "z", "hidden": 5}),
                     ((4,), {"ignored": 9})]:
        r, d = R(*args, **kw), D(*args, **kw)
        assert repr(r) == repr(d)
        assert dataclasses.asdict(r) == dataclasses.asdict(d)
        assert r == R(*args, **kw) and not (r != R(*args, **kw))
        assert (r == d) is False
    assert R(1, ignored=1) == R(1, ignored=2)          # compare=False
    assert R(1) != R(2)
    assert R(1).b is not R(1).b                         # a fresh default each time
    assert dataclasses.is_dataclass(R) and [f.name for f in dataclasses.fields(R)] == \
        [f.name for f in dataclasses.fields(D)]
    assert dataclasses.replace(R(1), c="q") == R(1, c="q")
    for bad in (lambda C: C(), lambda C: C(1, a=1), lambda C: C(1, zz=2),
                lambda C: C(1, 2, 3, 4, 5, 6)):
        with pytest.raises(TypeError):
            bad(D)
        with pytest.raises(TypeError):
            bad(R)
    if frozen:
        # the same tuple hashed (b hashable here: the default list is not)
        assert hash(R(1, (2,), c="h")) == hash(D(1, (2,), c="h"))
        with pytest.raises(dataclasses.FrozenInstanceError):
            R(1).a = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del R(1).a
    else:
        assert R.__hash__ is None and D.__hash__ is None
        r = R(1)
        r.a = 5
        assert r == R(5)


def test_record_runs_post_init():
    @record
    class P:
        x: int = 1

        def __post_init__(self):
            self.y = self.x * 2

    assert P(4).y == 8
