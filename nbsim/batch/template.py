"""Output-name templates of batch jobs: literal text with ``{frame}`` and ``{name}``.

A template comes from a job file, which may come from someone else, so it is not
handed to ``str.format`` (that would allow ``{name.__class__}``-style lookups and
unbounded widths). Each field must be exactly ``frame`` or ``name``, with no
conversion (``!r``) and an optional format spec of the usual mini-language whose
width and precision are at most :data:`MAX_WIDTH`; everything else is a one-line
error naming the template.
"""
from __future__ import annotations

import re
import string

from ..errors import NbsimError

FIELDS = ("frame", "name")
MAX_WIDTH = 64

# [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?"
                   r"[bcdeEfFgGnosxX%]?\Z", re.S)


class Template:
    """A checked template; ``render(name, frame)`` fills it in."""

    def __init__(self, text, where):
        if not isinstance(text, str):
            raise NbsimError("%s: a template must be a string (got %r)" % (where, text))
        self.text = text
        self.parts = []            # (literal, field or None, spec)
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise NbsimError("%s: bad template %r (%s)" % (where, text, exc)) from None
        for literal, field, spec, conversion in parsed:
            if field is None:
                self.parts.append((literal, None, ""))
                continue
            if field not in FIELDS:
                raise NbsimError("%s: template %r: field {%s} is not one of {frame}, {name} "
                                 "(no attribute or index lookups)" % (where, text, field))
            if conversion is not None:
                raise NbsimError("%s: template %r: conversions such as !%s are not allowed"
                                 % (where, text, conversion))
            m = _SPEC.match(spec or "")
            if "{" in (spec or "") or m is None:
                raise NbsimError("%s: template %r: bad format spec %r for {%s}"
                                 % (where, text, spec, field))
            for what in ("width", "precision"):
                if m.group(what) is not None and int(m.group(what)) > MAX_WIDTH:
                    raise NbsimError("%s: template %r: %s %s is more than %d"
                                     % (where, text, what, m.group(what), MAX_WIDTH))
            self.parts.append((literal, field, spec or ""))
        self.fields = {field for _l, field, _s in self.parts if field}
        try:
            self.render("x", 0)
        except (ValueError, TypeError) as exc:
            raise NbsimError("%s: bad template %r (%s)" % (where, text, exc)) from None

    def render(self, name, frame):
        values = {"name": name, "frame": frame}
        return "".join(literal + (format(values[field], spec) if field else "")
                       for literal, field, spec in self.parts)

    def __repr__(self):
        return "Template(%r)" % self.text
