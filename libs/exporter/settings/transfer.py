"""Transfer locations: the key that seals their credentials, what they may reach, and how the
notifier pushes to them. Part of the one settings object (``Settings``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

# Known to every checkout, so refused in production (``Settings._safe_in_production``).
LOCAL_SEALING_KEY = "exporter-local-transfer-sealing-key-not-secret"


class TransferSettings(BaseModel):
    # Seals each location's credentials at rest (AES-256-GCM under a key derived from it).
    sealing_key: SecretStr = Field(default=SecretStr(LOCAL_SEALING_KEY), min_length=32, max_length=4096)
    # Private, loopback and link-local hosts, and plain http: local runs and tests only (SSRF).
    allow_private_addresses: bool = False
    # Who may create, change and delete a tenant's locations (anyone of the tenant may list them,
    # without their secrets, to name one in a request).
    manager_role: str = Field(default="exporter-admin", min_length=1, max_length=100)
    max_locations_per_tenant: int = Field(default=100, ge=1, le=10_000)
    # Files pushed at once per notifier; more wait.
    concurrency: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=6, ge=1, le=100)
    backoff_initial_seconds: float = Field(default=2.0, gt=0, le=3600)
    backoff_max_seconds: float = Field(default=300.0, gt=0, le=86_400)
    # Each network step (connect, a part written, an answer) may take this long.
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # A push claimed this long ago and never recorded was cut off mid-push: pushed again.
    lease_seconds: float = Field(default=900.0, gt=0, le=86_400)
