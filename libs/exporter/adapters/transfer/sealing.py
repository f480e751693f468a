"""A location's credentials sealed at rest: AES-256-GCM, bound to the tenant and location they
belong to (the associated data), so a sealed value copied into another document does not open."""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

VERSION = "v1"
NONCE_BYTES = 12


class Sealer:
    def __init__(self, key: SecretStr) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"exporter transfer locations v1"
        ).derive(key.get_secret_value().encode())
        self._aead = AESGCM(derived)

    def seal(self, secrets: dict[str, str], tenant: str, location_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, json.dumps(secrets).encode(), _bound(tenant, location_id))
        return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, tenant: str, location_id: str) -> dict[str, str]:
        """Raises ``cryptography.exceptions.InvalidTag`` for a value sealed elsewhere or altered."""
        version, _, body = sealed.partition(":")
        if version != VERSION:
            raise ValueError(f"unknown sealing version '{version[:10]}'")
        raw = base64.b64decode(body)
        opened = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(tenant, location_id))
        secrets: dict[str, str] = json.loads(opened)
        return secrets


def _bound(tenant: str, location_id: str) -> bytes:
    return json.dumps([tenant, location_id]).encode()
