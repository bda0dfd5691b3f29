"""nbsim.config's groups are frozen records: they behave as @dataclass(frozen=True)
classes of the same fields (built here for comparison), without per-class compiling."""
import dataclasses

import pytest

from nbsim import config as C

GROUPS = [C.BeamConfig, C.DetectorConfig, C.CrystalConfig, C.SamplingConfig, C.NoiseConfig,
          C.OutputConfig, C.Config]


def _as_dataclass(cls):
    """A real frozen dataclass with ``cls``'s fields and defaults."""
    spec = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            spec.append((f.name, object, dataclasses.field(default_factory=f.default_factory)))
        else:
            spec.append((f.name, object, dataclasses.field(default=f.default)))
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True)


@pytest.mark.parametrize("cls", GROUPS, ids=lambda c: c.__name__)
def test_records_behave_as_frozen_dataclasses(cls):
    ref = _as_dataclass(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert names == [f.name for f in dataclasses.fields(ref)]
    a, r = cls(), ref()
    assert repr(a) == repr(r).replace(ref.__qualname__, cls.__qualname__)
    assert dataclasses.asdict(a) == dataclasses.asdict(r)
    assert a == cls() and hash(a) == hash(cls()) and hash(a) == hash(r)
    assert (a == r) is False                 # another class, as dataclasses compare
    # positional and keyword arguments, as the generated __init__ takes them
    first = getattr(a, names[0])
    assert cls(first) == a and cls(**{names[0]: first}) == a
    b = dataclasses.replace(a, **{names[-1]: "changed"})
    assert getattr(b, names[-1]) == "changed" and b != a and getattr(a, names[-1]) != "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, names[0], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(a, names[0])
    for bad in (lambda: cls(bogus=1), lambda: cls(first, **{names[0]: first}),
                lambda: cls(*([None] * (len(names) + 1)))):
        with pytest.raises(TypeError):
            bad()
    # default factories give each instance its own value
    if cls is C.Config:
        assert a.beam == C.BeamConfig() and a.beam is not cls().beam
