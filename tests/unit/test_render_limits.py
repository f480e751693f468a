"""The renderer's bounds on long renders refuse their worst values."""

from __future__ import annotations

import pytest

from exporter.settings import RendererSettings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrent_renders", 0),
        ("concurrent_renders", 33),
        ("max_poll_interval_seconds", 0.5),
        ("max_poll_interval_seconds", 3601),
    ],
)
def test_render_limits_refuse_the_worst_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        RendererSettings.model_validate({field: value})
