"""If-Match and If-None-Match as RFC 9110 reads them: the strong comparison for If-Match (a weak
tag never matches), the weak one for If-None-Match, and a bounded, well-formed header."""

from __future__ import annotations

import pytest

from request_api.errors import BadRequest
from request_api.preconditions import MAX_HEADER, parse, version_tag


def test_if_match_compares_strongly_a_list_of_tags_or_any() -> None:
    condition = parse("If-Match", ' "2" , W/"3", "a,b"')
    assert condition is not None
    assert condition.matches_strongly(version_tag(2))
    assert not condition.matches_strongly(version_tag(3))  # weak: never for If-Match
    assert condition.matches_weakly(version_tag(3))
    assert not condition.matches_strongly(version_tag(4))
    anything = parse("If-Match", "*")
    assert anything is not None
    assert anything.matches_strongly(version_tag(7))
    assert parse("If-Match", None) is None


@pytest.mark.parametrize("value", ["3", '"3" "4"', '"3",', "", "W/3", '"3"x', '"' + "a" * MAX_HEADER + '"'])
def test_a_malformed_or_oversized_header_is_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="If-Match: must be"):
        parse("If-Match", value)
