"""nbsim.batch.template: output names with plain {frame}/{name} fields only."""
import pytest

from nbsim.batch.template import MAX_WIDTH, Template
from nbsim.errors import NbsimError


@pytest.mark.parametrize("text, frame, want", [
    ("{name}_{frame:05d}.bin", 7, "scan_00007.bin"),
    ("{frame}", 12, "12"),
    ("img_{frame:x}", 255, "img_ff"),
    ("{name:>6}-{frame:+04}", 3, "  scan-+003"),
    ("{{literal}}_{frame}", 1, "{literal}_1"),
    ("plain.bin", 3, "plain.bin"),
    ("{frame:_>%d}" % MAX_WIDTH, 1, "_" * (MAX_WIDTH - 1) + "1"),
])
def test_templates_render_like_format(text, frame, want):
    assert Template(text, "here").render("scan", frame) == want
    assert want == text.format(name="scan", frame=frame)   # what str.format would give


@pytest.mark.parametrize("text, words", [
    ("{name.__class__.__mro__}", "field {name.__class__.__mro__}"),
    ("{frame[0]}", "field {frame[0]}"),
    ("{0}", "field {0}"),
    ("{}", "field {}"),
    ("{other}", "field {other}"),
    ("{frame!r}", "conversions"),
    ("{frame:>999999999}", "width 999999999 is more than %d" % MAX_WIDTH),
    ("{frame:.100f}", "precision 100 is more than"),
    ("{frame:{name}}", "bad format spec"),
    ("{frame:qq}", "bad format spec"),
    ("{name:d}", "bad template"),
    ("{frame", "bad template"),
    ("frame}", "bad template"),
    (17, "must be a string"),
])
def test_anything_else_is_a_one_line_error(text, words):
    with pytest.raises(NbsimError) as err:
        Template(text, "job file j.json: outputs -floatfile")
    message = str(err.value)
    assert words in message and message.startswith("job file j.json: outputs -floatfile")
    assert "\n" not in message


def test_fields_are_known():
    assert Template("{name}_{frame:03d}", "x").fields == {"name", "frame"}
    assert Template("fixed.bin", "x").fields == set()
