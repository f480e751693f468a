"""The README's configuration table names every setting, so it cannot silently fall behind."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from exporter.settings import Settings

README = Path(__file__).parents[2] / "README.md"


def _variables(model: type[BaseModel], prefix: str) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _variables(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    missing = [name for name in _variables(Settings, "EXPORTER_") if f"| `{name}` |" not in text]
    assert missing == []


def test_quick_start_is_the_two_commands() -> None:
    quick_start = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start
    assert "make test" in quick_start
