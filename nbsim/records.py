"""``@record``: a dataclass whose methods are shared functions.

``@record`` and ``@record(frozen=True)`` make the class a dataclass (so
``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on it) with the
``__init__``, ``__repr__``, ``__eq__`` and, when frozen, ``__hash__``, ``__setattr__``
and ``__delattr__`` that ``@dataclass`` would generate, behaving the same (fields with
and without defaults, ``default_factory``, ``field(repr=False)``, ``field(compare=False)``,
``__post_init__``). ``@dataclass`` writes those methods as source text and compiles them
for each class: about half a millisecond per class, which adds up to several
milliseconds of every command's start-up. Options other than ``frozen`` (``order``,
``slots``, ``kw_only``, ``InitVar``) are not supported: use ``@dataclass`` for those.
"""
import dataclasses
from dataclasses import MISSING

__all__ = ["record"]


def _init(self, *args, **kwargs):
    cls = type(self)
    names = cls._record_names
    if len(args) > len(names):
        raise TypeError("%s.__init__() takes %d positional arguments but %d were given"
                        % (cls.__qualname__, len(names) + 1, len(args) + 1))
    for name, value in zip(names, args):
        if name in kwargs:
            raise TypeError("%s.__init__() got multiple values for argument '%s'"
                            % (cls.__qualname__, name))
        kwargs[name] = value
    fields = cls.__dataclass_fields__
    missing = []
    for name in names:
        if name in kwargs:
            value = kwargs.pop(name)
        else:
            f = fields[name]
            if f.default is not MISSING:
                value = f.default
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            else:
                missing.append(name)
                continue
        object.__setattr__(self, name, value)
    if kwargs:
        raise TypeError("%s.__init__() got an unexpected keyword argument '%s'"
                        % (cls.__qualname__, next(iter(kwargs))))
    if missing:
        raise TypeError("%s.__init__() missing %d required argument%s: %s"
                        % (cls.__qualname__, len(missing), "s" if len(missing) > 1 else "",
                           ", ".join("'%s'" % n for n in missing)))
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _repr(self):
    cls = type(self)
    return "%s(%s)" % (cls.__qualname__, ", ".join(
        "%s=%r" % (name, getattr(self, name)) for name in cls._record_shown))


def _compared(self):
    return tuple(getattr(self, name) for name in type(self)._record_compared)


def _eq(self, other):
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented


def _hash(self):
    return hash(_compared(self))


def _frozen_setattr(self, name, value):
    raise dataclasses.FrozenInstanceError("cannot assign to field '%s'" % name)


def _frozen_delattr(self, name):
    raise dataclasses.FrozenInstanceError("cannot delete field '%s'" % name)


def record(cls=None, *, frozen=False):
    """``@dataclass`` / ``@dataclass(frozen=True)`` with shared methods (see the module)."""
    def wrap(cls):
        if cls.__doc__ is None:
            # what @dataclass would otherwise work out with inspect.signature
            cls.__doc__ = "%s(...)" % cls.__name__
        cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
        fields = dataclasses.fields(cls)
        cls._record_names = tuple(f.name for f in fields)
        cls._record_shown = tuple(f.name for f in fields if f.repr)
        cls._record_compared = tuple(f.name for f in fields if f.compare)
        cls.__init__ = _init
        cls.__repr__ = _repr
        cls.__eq__ = _eq
        if frozen:
            cls.__hash__ = _hash
            cls.__setattr__ = _frozen_setattr
            cls.__delattr__ = _frozen_delattr
            cls.__dataclass_params__.frozen = True
        else:
            cls.__hash__ = None          # as @dataclass: mutable and compared, so unhashable
        cls.__dataclass_params__.eq = True
        cls.__dataclass_params__.init = True
        cls.__dataclass_params__.repr = True
        return cls
    return wrap if cls is None else wrap(cls)
