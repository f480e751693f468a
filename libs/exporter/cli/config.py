"""Where the ``exporter`` command finds the API and who it says it is: flags first, then the
environment (``EXPORTER_API_URL``, ``EXPORTER_TOKEN``, ``EXPORTER_TENANT``, ``EXPORTER_USER``,
``EXPORTER_PROFILE``), then a profile of ``~/.config/exporter/profiles.toml``.

A profile may hold a token, or name a ``token_file``: either file must be readable by its owner
only, since anyone who reads it could act as that user. Tokens never leave this module unmasked
except in the ``Authorization`` header.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

DEFAULT_API_URL = "http://127.0.0.1:8080"
PROFILES_PATH = Path("~/.config/exporter/profiles.toml")
MAX_TOKEN_CHARS = 16_384
MAX_PROFILE_BYTES = 1024 * 1024
ENVIRONMENT = {
    "api_url": "EXPORTER_API_URL",
    "token": "EXPORTER_TOKEN",
    "tenant": "EXPORTER_TENANT",
    "user": "EXPORTER_USER",
}

# The API's own limits on identity headers (request_api.identity): refused here with the same words.
Tenant = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^/\s\x00-\x1f\x7f]+$")]
User = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class ConfigError(Exception):
    """A configuration the command refuses to run with; exit code 2."""


class ClientConfig(BaseModel):
    """Everything the HTTP client needs, validated before any request goes out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str = Field(default=DEFAULT_API_URL, max_length=2000, pattern=r"^https?://[^\s/]+(/\S*)?$")
    token: SecretStr | None = Field(default=None, min_length=1, max_length=MAX_TOKEN_CHARS)
    tenant: Tenant | None = None
    user: User | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    def headers(self) -> dict[str, str]:
        """A bearer token when there is one (production), else the development identity headers."""
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
        identity = {"X-User-Id": self.user, "X-Tenant-Id": self.tenant}
        return {name: value for name, value in identity.items() if value is not None}

    def describe(self) -> dict[str, str | None]:
        """The configuration as it may be shown: the token masked."""
        token = self.token.get_secret_value() if self.token else None
        return {"api_url": self.api_url, "token": mask(token), "tenant": self.tenant, "user": self.user}


def mask(secret: str | None) -> str | None:
    """Enough of a token to tell two apart, never enough to use: its length and last 4 characters
    only when it is long (a short one would be given away)."""
    if secret is None:
        return None
    return f"***{secret[-4:]} ({len(secret)} chars)" if len(secret) >= 24 else "***"


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    profile: str | None = None,
    profiles_path: Path | None = None,
) -> ClientConfig:
    """Flags over environment over profile; the profile is ``profile``, else ``EXPORTER_PROFILE``,
    else ``default`` when the file has one."""
    environ = os.environ if environ is None else environ
    path = (profiles_path or Path(environ.get("EXPORTER_PROFILES", PROFILES_PATH))).expanduser()
    name = profile or environ.get("EXPORTER_PROFILE")
    values: dict[str, Any] = load_profile(path, name or "default", required=name is not None)
    values.update({key: environ[variable] for key, variable in ENVIRONMENT.items() if environ.get(variable)})
    values.update({key: value for key, value in flags.items() if value is not None})
    try:
        return ClientConfig(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors(include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from None


def load_profile(path: Path, name: str, *, required: bool) -> dict[str, Any]:
    """The profile's settings, its ``token_file`` read in; {} when there is no such file or
    profile and none was asked for by name."""
    if not path.is_file():
        if required:
            raise ConfigError(f"profile {name!r} asked for, but {path} does not exist")
        return {}
    try:
        profiles = tomllib.loads(_private_text(path, holds_secret=False))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    profile = profiles.get(name)
    if not isinstance(profile, dict):
        if required:
            raise ConfigError(f"no profile {name!r} in {path} (profiles: {', '.join(sorted(profiles))})")
        return {}
    profile = dict(profile)
    if "token" in profile:
        _private_text(path, holds_secret=True)
    if (token_file := profile.pop("token_file", None)) is not None:
        profile["token"] = _private_text(Path(str(token_file)).expanduser(), holds_secret=True).strip()
    return profile


def _private_text(path: Path, *, holds_secret: bool) -> str:
    """The file's text; a file holding a secret that its group or others may read is refused."""
    try:
        info = path.stat()
        if holds_secret and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} holds a token but others may read it (mode {stat.filemode(info.st_mode)}): "
                f"run chmod 600 {path}"
            )
        if info.st_size > MAX_PROFILE_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_PROFILE_BYTES} bytes")
        return path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
