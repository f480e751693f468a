"""The ``exporter`` command's configuration: flags over environment over profile, bounded
values, token files private to their owner, tokens never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli.config import ClientConfig, ConfigError, mask, resolve

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-of-the-test-token.signature"


def profiles(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_flags_win_over_environment_over_profile(tmp_path: Path) -> None:
    text = '[default]\napi_url = "http://profile:1"\ntenant = "from-profile"\nuser = "profile-user"\n'
    path = profiles(tmp_path, text)
    environ = {"EXPORTER_API_URL": "http://env:2", "EXPORTER_USER": "env-user"}
    config = resolve({"api_url": "http://flag:3", "tenant": None}, environ, profiles_path=path)
    assert (config.api_url, config.user, config.tenant) == ("http://flag:3", "env-user", "from-profile")


def test_a_named_profile_is_chosen_by_flag_or_environment(tmp_path: Path) -> None:
    path = profiles(tmp_path, '[default]\nuser = "a"\n[ops]\nuser = "b"\n')
    assert resolve({}, {"EXPORTER_PROFILE": "ops"}, profiles_path=path).user == "b"
    assert resolve({}, {"EXPORTER_PROFILE": "ops"}, profile="default", profiles_path=path).user == "a"
    with pytest.raises(ConfigError, match=r"no profile 'nope'.*default, ops"):
        resolve({}, {}, profile="nope", profiles_path=path)


def test_no_profile_file_is_fine_unless_one_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    assert resolve({}, {}, profiles_path=missing).api_url == "http://127.0.0.1:8080"
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({}, {}, profile="prod", profiles_path=missing)


def test_a_token_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = profiles(tmp_path, f'[default]\ntoken = "{TOKEN}"\n', mode=0o644)
    refusal = r"others may read it \(mode -rw-r--r--\): run chmod 600"
    with pytest.raises(ConfigError, match=refusal) as refused:
        resolve({}, {}, profiles_path=path)
    assert TOKEN not in str(refused.value)
    path.chmod(0o600)
    assert resolve({}, {}, profiles_path=path).headers() == {"Authorization": f"Bearer {TOKEN}"}


def test_a_token_file_must_be_private_too(tmp_path: Path) -> None:
    token_file = tmp_path / "prod.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o640)
    # The profile itself holds no secret: group-readable is fine for it.
    path = profiles(tmp_path, f'[prod]\ntoken_file = "{token_file}"\n', mode=0o644)
    with pytest.raises(ConfigError, match=r"prod\.token holds a token but others may read it"):
        resolve({}, {}, profile="prod", profiles_path=path)
    token_file.chmod(0o400)
    assert resolve({}, {}, profile="prod", profiles_path=path).token is not None


def test_header_identity_without_a_token() -> None:
    config = resolve({"tenant": "acme", "user": "ann"}, {}, profiles_path=Path("/nonexistent"))
    assert config.headers() == {"X-User-Id": "ann", "X-Tenant-Id": "acme"}


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        ({"tenant": "a/b"}, "tenant"),
        ({"tenant": "t" * 101}, "tenant"),
        ({"user": "u\x1b[2J"}, "user"),
        ({"user": "u" * 201}, "user"),
        ({"api_url": "file:///etc/passwd"}, "api_url"),
        ({"api_url": "http://" + "h" * 2000}, "api_url"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 1e9}, "timeout_seconds"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_worst_values_are_refused_naming_the_setting(flags: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid configuration: {problem}"):
        resolve(flags, {}, profiles_path=Path("/nonexistent"))


def test_an_oversized_token_is_refused_without_showing_it() -> None:
    huge = "x" * 20_000
    with pytest.raises(ConfigError) as refused:
        resolve({}, {"EXPORTER_TOKEN": huge}, profiles_path=Path("/nonexistent"))
    assert huge[:100] not in str(refused.value)


def test_broken_profiles_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve({}, {}, profiles_path=profiles(tmp_path, "[default\n"))
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        resolve({}, {}, profiles_path=tmp_path / "bin.toml")


def test_tokens_are_masked_when_shown() -> None:
    config = ClientConfig(token=TOKEN)
    shown = config.describe()
    assert shown["token"] == f"***ture ({len(TOKEN)} chars)"
    assert TOKEN not in repr(config)
    assert mask("short-secret") == "***"
    assert mask(None) is None
