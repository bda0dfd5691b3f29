"""Structure factors held in memory: the records of an ``-hkl`` file, without the file.

``StructureFactors.coerce(value)`` accepts what people have at hand: a dict
``{(h, k, l): F}``, a pair ``(hkl, F)`` of arrays shaped (n, 3) and (n,), or an
existing :class:`StructureFactors`. The plan turns the records into the reference's
dense table with :func:`nbsim.io.hkl.table_from_records`, the same function that
builds it from a file, so the same records give the same bits either way. Records
keep their order; a later record for the same (h, k, l) replaces an earlier one, as
in a file.
"""
from __future__ import annotations

import hashlib
import numbers
import os

import numpy as np

from .errors import NbsimError

_INT32 = (-2**31, 2**31 - 1)


def _frozen(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


class StructureFactors:
    """``hkl`` (n, 3) int64 and ``F`` (n,) float64 records, read-only.

    F is the structure-factor amplitude on the absolute (electron) scale, as in an
    ``h k l F`` file; reflections not listed take ``default_F``.
    """

    __slots__ = ("hkl", "F", "_digest")

    def __init__(self, hkl, F, field="Fhkl"):
        where = "%s" % field
        try:
            idx = np.asarray(hkl)
            amp = np.asarray(F)
        except Exception:  # noqa: BLE001 - anything numpy cannot read is bad input
            raise NbsimError("%s: expected an (n, 3) array of h k l and an (n,) array of F"
                             % where) from None
        if idx.ndim != 2 or idx.shape[1:] != (3,):
            raise NbsimError("%s: h k l must be an (n, 3) array of integers (got shape %s)"
                             % (where, idx.shape))
        if amp.shape != (idx.shape[0],):
            raise NbsimError("%s: F must be an (n,) array with one amplitude per h k l "
                             "(got shape %s for %d reflections)" % (where, amp.shape, idx.shape[0]))
        if idx.shape[0] == 0:
            raise NbsimError("%s: no reflections given" % where)
        if idx.dtype.kind == "f":
            if not np.all(np.isfinite(idx)) or np.any(idx != np.round(idx)):
                raise NbsimError("%s: h k l must be whole numbers" % where)
        elif idx.dtype.kind not in "iu":
            raise NbsimError("%s: h k l must be integers (got %s)" % (where, idx.dtype))
        if idx.min() < _INT32[0] or idx.max() > _INT32[1]:
            raise NbsimError("%s: h k l out of range for a C int" % where)
        if amp.dtype.kind not in "iuf" or amp.dtype == np.bool_:
            raise NbsimError("%s: F must be real numbers (electrons; got %s)" % (where, amp.dtype))
        self.hkl = _frozen(idx.astype(np.int64))
        self.F = _frozen(amp.astype(np.float64))
        digest = hashlib.sha1(self.hkl.tobytes())
        digest.update(self.F.tobytes())
        self._digest = digest.hexdigest()

    @classmethod
    def coerce(cls, value, field="Fhkl"):
        """A StructureFactors from a dict, an (hkl, F) pair, or a StructureFactors."""
        if isinstance(value, StructureFactors):
            return value
        if isinstance(value, dict):
            if not value:
                raise NbsimError("%s: the dict holds no reflections" % field)
            keys, amps = [], []
            for key, amp in value.items():
                if (not isinstance(key, tuple) or len(key) != 3
                        or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
                                   for x in key)):
                    raise NbsimError("%s: keys must be (h, k, l) tuples of integers (got %r)"
                                     % (field, key))
                if not isinstance(amp, numbers.Real) or isinstance(amp, bool):
                    raise NbsimError("%s: F for %r must be a real number (electrons; got %r)"
                                     % (field, key, amp))
                keys.append(key)
                amps.append(float(amp))
            return cls(np.array(keys, dtype=np.int64), np.array(amps, dtype=np.float64), field)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1], field)
        raise NbsimError("%s: expected a dict {(h, k, l): F} or a pair (hkl (n, 3), F (n,)); "
                         "got %s" % (field, type(value).__name__))

    def __len__(self):
        return self.hkl.shape[0]

    def __eq__(self, other):
        return isinstance(other, StructureFactors) and self._digest == other._digest

    def __hash__(self):
        return hash(self._digest)

    def __repr__(self):
        lo, hi = self.hkl.min(axis=0), self.hkl.max(axis=0)
        return ("StructureFactors(%d reflections, h %d..%d, k %d..%d, l %d..%d)"
                % (len(self), lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))

    @property
    def key(self):
        """A digest of the records: equal records, equal key."""
        return self._digest

    def table(self, default_F, max_bytes=None):
        """The reference's dense table (:class:`nbsim.io.hkl.HklTable`); one larger than
        ``max_bytes`` (None: nbsim.limits' cap) is refused before it is allocated."""
        from .io.hkl import table_from_records
        return table_from_records(self.hkl[:, 0], self.hkl[:, 1], self.hkl[:, 2], self.F,
                                  default_F, "structure factors", max_bytes)

    def write_hkl(self, path):
        """Write the records as an ``h k l F`` text file that reads back to the same bits."""
        from .io.atomic import atomic_write_bytes
        lines = "".join("%d %d %d %s\n" % (h, k, l, repr(float(f)))
                        for (h, k, l), f in zip(self.hkl.tolist(), self.F.tolist()))
        atomic_write_bytes(os.fspath(path), [lines.encode("ascii")])
